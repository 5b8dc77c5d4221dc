"""A video's summary is written by the LLM that serves grounded answers ("kotatsu"): the one `models use kotatsu`
(or the admin) marked, the largest the live nodes run fast enough under "auto", and SmolLM2 when it is the one."""
import datetime as dt

import pytest
from django.core.management import call_command

from ingest.models import Video, VideoSummary
from ingest.summaries import do_summarize_video, summary_model_name
from tests.assistant.conftest import ensure_model_catalog
from tests.assistant.knowledge import timed_segments
from tests.inference.llm_nodes import QWEN, SMOLLM2, cluster_redis_db, llm_nodes  # noqa: F401  (fixtures)


def test_the_summary_llm_follows_the_mark_of_grounded_answers(llm_nodes, settings):
    llm_nodes.announce("alpha", "beta", "gamma")  # together they hold the 1.5B
    settings.LLM_INTERACTIVE_TOK_S = 100.0  # "auto" takes the fastest LLM, SmolLM2: no mark asks for speed

    call_command("models", "use", "kotatsu", QWEN)
    assert summary_model_name() == QWEN
    call_command("models", "use", "chat", SMOLLM2)  # the mark of plain chat is not the summaries'
    assert summary_model_name() == QWEN

    call_command("models", "use", "kotatsu", SMOLLM2)
    assert summary_model_name() == SMOLLM2
    call_command("models", "use", "kotatsu", "auto")
    assert summary_model_name() == SMOLLM2

    settings.LLM_INTERACTIVE_TOK_S = 0.1  # both decode fast enough: "auto" takes the larger
    assert summary_model_name() == QWEN
    llm_nodes.leave("gamma")  # two nodes cannot hold the 1.5B
    assert summary_model_name() == SMOLLM2
