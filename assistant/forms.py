from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.translation import gettext as _

from assistant import login_limit

MAX_QUESTION_LENGTH = 2000


class AskForm(forms.Form):
    question = forms.CharField(max_length=MAX_QUESTION_LENGTH, strip=True)
    conversation = forms.IntegerField(required=False, min_value=1)
    source = forms.IntegerField(required=False, min_value=1)
    published_after = forms.DateTimeField(required=False)
    published_before = forms.DateTimeField(required=False)


class SearchForm(forms.Form):
    q = forms.CharField(max_length=MAX_QUESTION_LENGTH, strip=True, required=False)
    source = forms.IntegerField(required=False, min_value=1)


class LimitedLoginMixin:
    """Every login form's check of the failed-login limit (assistant.login_limit), admin's included: a locked
    username and address is refused before its password is even tried."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = login_limit.client_address(self.request)
        if login_limit.is_locked_out(username, address):
            raise ValidationError(
                _("Too many failed attempts. Try again in %(minutes)d minutes.") % {"minutes": login_limit.LOCKOUT_S // 60},
                code="locked_out",
            )
        try:
            cleaned_data = super().clean()
        except ValidationError:
            # Only a wrong password counts: an inactive or non-staff account that typed its own is not an attack.
            if self.user_cache is None:
                login_limit.record_failure(username, address)
            raise
        if self.user_cache is not None:
            login_limit.clear_failures(username, address)
        return cleaned_data

    def is_locked_out(self):
        return self.has_error(NON_FIELD_ERRORS, "locked_out")


class LoginForm(LimitedLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(LimitedLoginMixin, AdminAuthenticationForm):
    pass
