"""A Japanese answer citing an English talk shares no word with it: its citation is placed by meaning (with the
multilingual embedding model), on the segment that states the sentence's fact, as an English sentence's is."""
import pytest

from assistant.answering import AnswerCheck, checked_sentences
from ingest.models import EmbeddingSetting, Video
from ingest.retrieval import Passage
from tests.assistant.knowledge import SEGMENT_S, segment_start, timed_segments
from tests.ingest.talks import LONG_TALK

pytestmark = pytest.mark.django_db
QUESTION = "共有サーバーのデータはいつバックアップサーバーにコピーされますか？"


@pytest.fixture
def update_talk_passage():
    """The whole English talk as the one passage given, the knowledge base embedded with EmbeddingGemma."""
    EmbeddingSetting.current()
    EmbeddingSetting.objects.update(active_model="embeddinggemma-300m")
    video = Video.objects.create(extractor="generic", video_id="update", url="https://media.example/update.mp3",
                                 title="Monthly engineering update", segments=timed_segments(LONG_TALK))
    return Passage(video=video, start_s=0.0, end_s=len(LONG_TALK) * SEGMENT_S, segments=video.segments, score=0.5,
                   fused_rank=0.03)


@pytest.mark.parametrize("answer, phrase", [
    ("メインデータベースは毎晩三時にバックアップサーバーにコピーされます。", "every night at three"),
    ("古いコピーが必要な場合は、運用グループに希望の日付を書いて送ってください。", "write to the operations group"),
    ("フルリストアのテストは毎月第一月曜日に行われます。", "first Monday of every month"),
])
def test_an_uncited_japanese_sentence_is_cited_at_the_english_segment_that_says_it(update_talk_passage, answer, phrase):
    check = AnswerCheck(QUESTION, [update_talk_passage], language="ja")

    text = "".join(checked_sentences([answer], check))
    [source] = check.evidence.sources(text)

    assert text == answer[:-1] + " [1]。"
    assert source["second"] == segment_start(LONG_TALK, phrase)
