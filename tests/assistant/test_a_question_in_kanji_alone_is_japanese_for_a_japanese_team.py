"""A question written in kanji alone (「会議室予約方法」) reads the same in Japanese and Chinese: it is answered as
Japanese when the asker's interface speaks Japanese or the knowledge base holds a Japanese talk, as Chinese only
when neither does; the dashboard answers (or refuses) a Japanese employee in Japanese, never in Chinese."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from assistant.answering import ENGLISH_ONLY_NOTICE, LANGUAGE_NAMES, NOT_COVERED_IN, answer_language
from assistant.services import do_choose_language
from ingest.models import Video
from tests.assistant.server_sent_events import server_sent_events

KANJI_ONLY = ["会議室予約方法", "社長名前", "消火器場所"]
SMOLLM2 = "smollm2-135m-instruct"


@pytest.mark.django_db
def test_kanji_alone_is_japanese_for_a_japanese_interface_or_knowledge_base_and_chinese_otherwise(knowledge):
    assert {answer_language(question, "ja") for question in KANJI_ONLY} == {"ja"}
    assert {answer_language(question, "en") for question in KANJI_ONLY} == {"zh"}, "an English knowledge base"

    Video.objects.filter(pk=knowledge["kitchen"].pk).update(language="ja")
    assert {answer_language(question, "en") for question in KANJI_ONLY} == {"ja"}

    # The script decides whenever it can: kana are Japanese, Hangul Korean, Latin letters English.
    assert answer_language("会議室の予約方法は？", "en") == "ja"
    assert answer_language("회의실 예약 방법", "ja") == "ko"
    assert answer_language("How do I book a meeting room?", "ja") == "en"
    # Every answer language has its notices: nothing is answered in a language it then cannot speak.
    assert {"ja", "zh", "ko"} == set(LANGUAGE_NAMES) == set(NOT_COVERED_IN) - {"en"} == set(ENGLISH_ONLY_NOTICE)


@pytest.mark.django_db(transaction=True)  # answers are generated in a thread of their own: committed data only
def test_the_dashboard_answers_a_japanese_employees_kanji_question_in_japanese(client, knowledge, settings):
    settings.LLM_ANSWER_MODEL = SMOLLM2  # answers English only: a notice, in the question's language
    employee = get_user_model().objects.create_user("kenji", password="a long pass phrase 42")
    do_choose_language(employee, "ja")
    client.force_login(employee)

    for question in KANJI_ONLY:
        response = client.post(reverse("ask_stream"), {"question": question})
        text = "".join(data["text"] for event, data in server_sent_events(response) if event == "delta")
        assert text in (NOT_COVERED_IN["ja"], ENGLISH_ONLY_NOTICE["ja"].format(model=SMOLLM2)), (question, text)

