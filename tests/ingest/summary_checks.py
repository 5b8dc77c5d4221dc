"""What every written summary must be, whichever way it was written."""
from inference.model_files import DEFAULT_MODEL
from ingest.models import VideoSummary
from ingest.summaries import grounding_problem


def assert_written_from(summary, video):
    """The LLM's summary passes the grounding checks, or the summary is sentences of the transcript and says why
    the LLM's failed them."""
    transcript = " ".join([video.title, *(segment["text"] for segment in video.segments)])
    assert summary.text and summary.written_at is not None and summary.model == DEFAULT_MODEL
    if summary.kind == VideoSummary.ABSTRACTIVE:
        assert grounding_problem(summary.text, transcript) is None and not summary.fallback_reason
    else:
        # SmolLM2 (the tests' LLM) is not asked at all: none of its summaries ever passed (NO_GROUNDED_SUMMARIES).
        declined = (f"{summary.model} writes no summary that passes the checks", "the LLM's summaries failed the checks: ")
        assert summary.fallback_reason.startswith(declined), summary.fallback_reason
        leftover = summary.text
        for segment in video.segments:
            leftover = leftover.replace(segment["text"].strip(), "")
        assert not leftover.strip(), "an extractive summary is sentences of the transcript, nothing else"
