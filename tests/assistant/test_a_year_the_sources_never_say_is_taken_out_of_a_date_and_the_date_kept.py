"""A small model dates what a talk says without a year ("in September" becomes "2023年9月"): a year the sources
never say is taken out of the date or the thing it qualifies, the rest of the sentence kept, instead of the
sentence being dropped for an unsupported number. A year the sources say stays; any other invented number still
drops its sentence."""
from assistant.answering import NOT_COVERED_IN
from tests.assistant.answer_checks import checked_against

SOURCE = ("We are also opening a sales office in Lisbon in September. "
          "The marketing budget for next year is 2 million euros. The last conference was in March 2024.")


def checked(answer, question):
    return checked_against(SOURCE, answer, question)


def test_an_invented_year_is_taken_out_of_a_japanese_date():
    text, dropped = checked("リスボンの営業所は2023年9月に開設されます [1]。", "リスボンの営業所はいつ開設されますか？")

    assert text == "リスボンの営業所は9月に開設されます [1]。"
    assert dropped == ["2023年"]


def test_an_invented_year_qualifying_a_thing_is_taken_out():
    text, dropped = checked("2023年のマーケティング予算は200万ユーロです [1]。", "来年のマーケティング予算はいくらですか？")

    assert text == "マーケティング予算は200万ユーロです [1]。"
    assert dropped == ["2023年の"]


def test_an_invented_year_is_taken_out_of_an_english_date():
    text, dropped = checked("The office in Lisbon opens on September 1, 2023 [1].", "When does the office open?")

    assert text == "The office in Lisbon opens on September 1 [1]."
    assert dropped == ["2023"]


def test_a_year_the_sources_say_stays():
    text, dropped = checked("The last conference was in March 2024 [1].", "When was the last conference?")

    assert text == "The last conference was in March 2024 [1]." and dropped == []


def test_a_wrong_amount_still_drops_the_sentence_once_the_year_is_out():
    text, dropped = checked("2023年のマーケティング予算は2,000万ユーロです [1]。", "来年のマーケティング予算はいくらですか？")

    assert text == NOT_COVERED_IN["ja"]
    assert dropped == ["2023年の", "マーケティング予算は2,000万ユーロです [1]。"]
