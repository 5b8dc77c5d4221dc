"""A question in Japanese is answered in Japanese by an LLM that can (Qwen2.5), with citations to the second of
the original video; SmolLM2, which answers in English only, gives a notice in Japanese instead of an English
answer passed off as one, with the sources it found."""
import pytest

from assistant.answering import ENGLISH_ONLY_NOTICE, NOT_COVERED_IN, GroundedAnswer, question_language
from ingest.replica import rebuild_snapshot
from tests.assistant.knowledge import indexed_video, segment_start

pytestmark = pytest.mark.django_db
SMOLLM2 = "smollm2-135m-instruct"
QWEN = "qwen2.5-coder-1.5b-instruct"
NOTICE_TALK = [
    "おはようございます。今月の総務からのお知らせです。",
    "オフィスのコーヒーマシンは火曜日に修理されました。",
    "データベースは毎晩三時にバックアップサーバーにコピーされます。",
    "各コピーは一か月間保存されます。",
    "夏のパーティーは屋上テラスで開かれます。",
    "以上です。ありがとうございました。",
]
QUESTION = "データベースは毎晩何時にバックアップサーバーにコピーされますか？"


@pytest.fixture
def notices(knowledge):
    video = indexed_video(knowledge["source"], "notices", "総務からのお知らせ", NOTICE_TALK)
    rebuild_snapshot()
    return video


def test_the_language_of_a_question_is_told_by_its_script():
    assert [question_language(text) for text in ("When is the backup?", QUESTION, "备份是什么时候？", "백업은 언제입니까?")] == [
        "en", "ja", "zh", "ko"]


def test_qwen_answers_a_japanese_question_in_japanese_citing_the_second(notices):
    answer = GroundedAnswer(QUESTION, model_name=QWEN, max_tokens=24)
    text = "".join(answer)

    assert "Answer in Japanese" in answer.messages(answer.passages)[0]["content"]
    assert text.strip() and question_language(answer.text) == "ja", answer.text
    cited = [source for source in answer.sources if source["video_id"] == notices.pk]
    assert cited and cited[0]["second"] == segment_start(NOTICE_TALK, "毎晩三時"), answer.sources


def test_smollm2_gives_a_notice_in_japanese_with_the_sources_instead_of_an_english_answer(notices):
    answer = GroundedAnswer(QUESTION, model_name=SMOLLM2)
    text = "".join(answer)

    assert text == answer.text == ENGLISH_ONLY_NOTICE["ja"].format(model=SMOLLM2)
    assert answer.completion_tokens == 0, "nothing was generated"
    [source] = answer.sources
    assert source["video_id"] == notices.pk and source["second"] == segment_start(NOTICE_TALK, "毎晩三時")


def test_a_japanese_question_the_knowledge_base_does_not_cover_is_refused_in_japanese(knowledge):
    answer = GroundedAnswer("火星での液体窒素の沸点は何度ですか？", model_name=SMOLLM2)
    assert "".join(answer) == NOT_COVERED_IN["ja"] and answer.sources == []
