from django import forms

MAX_QUESTION_LENGTH = 2000


class AskForm(forms.Form):
    question = forms.CharField(max_length=MAX_QUESTION_LENGTH, strip=True)
    conversation = forms.IntegerField(required=False, min_value=1)
    source = forms.IntegerField(required=False, min_value=1)
    published_after = forms.DateTimeField(required=False)
    published_before = forms.DateTimeField(required=False)
