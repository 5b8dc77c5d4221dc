"""A sentence whose first clause states what the sources say and a later clause a fact they do not ("It takes
place in Vienna, Austria.") is cut before that clause, its citation and end kept; one whose first clause states
an unsupported fact is dropped whole, since the claim itself is invented."""
from assistant.answering import NOT_COVERED_IN
from tests.assistant.answer_checks import checked_against

SOURCE = "The annual sales conference moves to October. It will take place in Vienna, at a hotel next to the station."
QUESTION = "Where will the annual sales conference take place?"


def checked(answer, question=QUESTION):
    return checked_against(SOURCE, answer, question)


def test_a_later_clause_with_a_place_the_sources_never_say_is_cut():
    text, dropped = checked("The conference will take place in Vienna, Austria [1].")

    assert text == "The conference will take place in Vienna [1]."
    assert dropped == ["Austria"]


def test_a_later_clause_with_an_invented_number_is_cut_and_the_next_sentence_kept():
    text, dropped = checked("It takes place in Vienna; about 300 people come [1]. It moves to October [1].")

    assert text == "It takes place in Vienna [1]. It moves to October [1]."
    assert dropped == ["about 300 people come"]


def test_a_sentence_whose_first_clause_is_unsupported_is_dropped_whole():
    text, dropped = checked("It takes place in Berlin, at a hotel next to the station [1]. It is in Vienna [1].")

    assert text == "It is in Vienna [1]."
    assert dropped == ["It takes place in Berlin, at a hotel next to the station [1]."]


def test_a_japanese_sentence_is_cut_at_its_comma():
    text, dropped = checked("会議はウィーンで開かれ、参加者は300人です [1]。", question="年次営業会議はどこで開かれますか？")

    assert text == "会議はウィーンで開かれ [1]。"
    assert dropped == ["参加者は300人です"]


def test_a_thousands_separator_is_no_clause_boundary():
    text, dropped = checked("The budget is 2,000 euros [1].")

    assert text == NOT_COVERED_IN["en"]
    assert dropped == ["The budget is 2,000 euros [1]."]
