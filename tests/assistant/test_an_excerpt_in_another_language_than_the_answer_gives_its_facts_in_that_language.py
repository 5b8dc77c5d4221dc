"""An excerpt in another language than the answer's is given to the model with its numbers in digits and each
weekday and clock time followed by its form in the answer's language: a small model translating them got them
wrong ("water Monday" for 水曜日, 2,000万 for 2 million) or left them out (Saturday). An excerpt in the answer's
language is given as it was said."""
import pytest

from assistant.answering import GroundedAnswer, glossed
from ingest.replica import rebuild_snapshot
from tests.assistant.knowledge import indexed_video

pytestmark = pytest.mark.django_db
QWEN = "qwen2.5-coder-1.5b-instruct"
CAFETERIA = [
    "皆さん、おはようございます。総務部の山田です。",
    "新しい社員食堂は本社ビルの七階にオープンします。",
    "営業時間は、午前十一時から午後二時までです。",
    "毎週水曜日は、カレーの日です。",
    "以上です。ありがとうございました。",
]


def test_an_english_excerpt_for_a_japanese_answer_gives_digits_weekdays_and_times_in_japanese():
    assert glossed("The move starts on Saturday the fourteenth at six in the morning.", "ja") == (
        "The move starts on Saturday (土曜日) the 14th at 6 in the morning (午前6時).")
    assert glossed("The marketing budget is two million euros.", "ja") == "The marketing budget is 2000000 euros."


def test_a_japanese_excerpt_for_an_english_answer_gives_digits_weekdays_and_times_in_english():
    assert glossed("営業時間は、午前十一時から午後二時までです。", "en") == "営業時間は、午前11時 (11 am)から午後2時 (2 pm)までです。"
    assert glossed("毎週水曜日は、カレーの日です。席は百二十席で、一緒に座れます。", "en") == (
        "毎週水曜日 (Wednesday)は、カレーの日です。席は120席で、一緒に座れます。")


def test_qwen_names_the_weekday_a_japanese_talk_says_in_english(knowledge):
    indexed_video(knowledge["source"], "cafeteria", "新しい社員食堂のお知らせ", CAFETERIA)
    rebuild_snapshot()
    question = "Which day of the week is curry day in the cafeteria?"

    answer = GroundedAnswer(question, model_name=QWEN, max_tokens=32)
    text = "".join(answer)

    assert "毎週水曜日 (Wednesday)は" in answer.messages(answer.passages)[0]["content"]
    assert "Wednesday" in text, text


def test_an_excerpt_in_the_answer_language_is_given_as_it_was_said(knowledge):
    answer = GroundedAnswer("When is the sales review?", model_name="smollm2-135m-instruct", max_tokens=1)
    "".join(answer)

    assert "eighteen percent" in answer.messages(answer.passages)[0]["content"]
