"""A video's summary is written once: a redelivered task finds it written or claimed by a live process, and
only the claim of a process that died is taken over."""
import subprocess
import sys

import pytest
from django.utils import timezone

from ingest.models import VideoSummary
from ingest.summaries import do_summarize_video

pytestmark = pytest.mark.django_db


def summarize(video):
    # Claims are the same whoever writes the text: without an LLM (an unknown name) these tests stay quick.
    return do_summarize_video(video.pk, model_name="no-such-llm")


def dead_process_summarizer(settings):
    """The owner string of a process of this node that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{settings.NODE_NAME}:{process.pid}:0"


def test_a_redelivered_task_leaves_the_written_summary_alone(knowledge):
    assert summarize(knowledge["kitchen"]) is True
    written = VideoSummary.objects.get(video=knowledge["kitchen"])
    assert written.text and written.written_at is not None and written.summarizer == ""

    assert summarize(knowledge["kitchen"]) is False
    assert VideoSummary.objects.get(video=knowledge["kitchen"]).written_at == written.written_at
    assert VideoSummary.objects.count() == 1


def test_a_summary_another_live_node_is_writing_is_left_to_it(knowledge):
    VideoSummary.objects.create(video=knowledge["kitchen"], summarizer="other-node:123:456", claimed_at=timezone.now())
    assert summarize(knowledge["kitchen"]) is False
    assert VideoSummary.objects.get(video=knowledge["kitchen"]).text == ""


def test_the_summary_of_a_dead_process_is_taken_over_and_written(knowledge, settings):
    VideoSummary.objects.create(
        video=knowledge["kitchen"], summarizer=dead_process_summarizer(settings), claimed_at=timezone.now()
    )
    assert summarize(knowledge["kitchen"]) is True
    assert VideoSummary.objects.get(video=knowledge["kitchen"]).text
