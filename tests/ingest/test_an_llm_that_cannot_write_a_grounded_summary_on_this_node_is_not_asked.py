"""The summary is extractive at once, saying why, when the LLM that serves answers would only waste the worker's
time or memory: SmolLM2, none of whose summaries ever passed the checks, and an LLM bigger than this node's free
memory (it serves answers spread over several nodes; loaded whole here, the kernel would kill the worker)."""
import datetime as dt

import pytest

from inference.models import ModelEntry
from ingest import summaries
from ingest.models import Video, VideoSummary
from ingest.summaries import do_summarize_video
from tests.assistant.conftest import ensure_model_catalog
from tests.assistant.knowledge import timed_segments
from tests.inference.llm_nodes import SMOLLM2

pytestmark = pytest.mark.django_db

TALK = [
    "The office coffee machine was repaired on Tuesday by a technician.",
    "It makes espresso again, so please clean the milk frother after every use.",
    "New beans from a small roaster in the mountains arrive next week.",
]


def coffee_talk():
    return Video.objects.create(
        extractor="generic", video_id="coffee", url="https://media.example/coffee.mp3", title="Office news",
        published_at=dt.datetime(2026, 9, 1, tzinfo=dt.timezone.utc), segments=timed_segments(TALK),
    )


def test_smollm2_serving_answers_gives_the_labelled_extractive_summary_without_loading_it(settings):
    ensure_model_catalog()
    settings.LLM_ANSWER_MODEL = SMOLLM2
    video = coffee_talk()

    assert do_summarize_video(video.pk) is True
    summary = VideoSummary.objects.get(video=video)
    assert summary.kind == VideoSummary.EXTRACTIVE and summary.model == SMOLLM2
    assert summary.fallback_reason == (
        f"{SMOLLM2} writes no summary that passes the checks; a larger LLM serving answers writes them"
    )
    assert summary.text == " ".join(TALK)  # the transcript's central sentences: here all three, in spoken order
    assert SMOLLM2 not in summaries.loaded_engines


def test_an_llm_bigger_than_this_node_s_free_memory_is_not_loaded_for_a_summary(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    terabyte = 1024**4
    ModelEntry.objects.create(
        name="giant-llm", kind="llm", format="gguf", size=terabyte, sha256="0" * 64,
        profile={"context_length": 4096, "layer_bytes": [terabyte // 2, terabyte // 2], "kv_bytes_per_layer": 0,
                 "embedding_bytes": 0, "head_bytes": 0, "working_bytes": 0},
    )
    video = coffee_talk()

    assert do_summarize_video(video.pk, model_name="giant-llm") is True
    summary = VideoSummary.objects.get(video=video)
    assert summary.kind == VideoSummary.EXTRACTIVE and summary.model == "giant-llm"
    assert summary.fallback_reason.startswith("giant-llm needs 1024.00 GiB whole, this node has ")
    assert summary.fallback_reason.endswith(" GiB free") and summary.text
    assert "giant-llm" not in summaries.loaded_engines and not (tmp_path / "cache").exists()
