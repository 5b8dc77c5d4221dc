"""When a sentence is cut before a clause stating an unsupported fact, what is left must say something the question
did not: a head that only restates the question ("The data center in Osaka [1]." for "Which cloud provider hosts
the backups of the Osaka data center?") is no answer, and the sentence is dropped whole. Function words and
Japanese particles do not count as saying something."""
from assistant.answering import NOT_COVERED_IN, says_more_than
from tests.assistant.answer_checks import checked_against

SOURCE = ("Our biggest project is moving the build farm to the new data center in Osaka. "
          "The move starts on Saturday at six in the morning.")


def checked(answer, question):
    return checked_against(SOURCE, answer, question)


def test_a_head_restating_the_question_is_dropped_and_the_answer_refused():
    text, dropped = checked("The data center in Osaka, Japan [1].",
                            "Which cloud provider hosts the backups of the Osaka data center?")

    assert text == NOT_COVERED_IN["en"]
    assert dropped == ["The data center in Osaka, Japan [1]."]


def test_a_japanese_head_restating_the_question_is_dropped():
    text, dropped = checked("大阪のデータセンターのバックアップは、AWSに保存されます [1]。",
                            "大阪のデータセンターのバックアップはどのクラウドに保存されますか？")

    assert text == NOT_COVERED_IN["ja"]
    assert dropped == ["大阪のデータセンターのバックアップは、AWSに保存されます [1]。"]


def test_a_head_that_adds_a_fact_to_the_question_is_kept():
    text, dropped = checked("The move starts on Saturday, at 9 in the evening [1].", "When does the move start?")

    assert text == "The move starts on Saturday [1]."
    assert dropped == ["at 9 in the evening"]


def test_function_words_and_particles_say_nothing_and_other_words_do():
    question = "Which cloud provider hosts the backups of the Osaka data center?"
    assert not says_more_than("The backups of the data center in Osaka are", question)
    assert says_more_than("The backups are kept on tape", question)
    assert says_more_than("The data centers are in Kyoto", question)
    assert not says_more_than("バックアップはクラウドに", "バックアップはどのクラウドですか？")
    assert says_more_than("バックアップは京都に", "バックアップはどのクラウドですか？")
