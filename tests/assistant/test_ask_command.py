"""`manage.py ask`: the answer streamed, its sources, and with --json a last line for scripts."""
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from assistant.answering import LEAD_IN_S
from assistant.models import Conversation
from tests.assistant.knowledge import SALES_REVIEW, segment_start

pytestmark = pytest.mark.django_db


def ask(*args):
    out = io.StringIO()
    call_command("ask", *args, stdout=out)
    return out.getvalue()


def test_the_last_line_is_the_answer_with_sources_and_ttft_as_json(knowledge):
    output = ask("Which market will we focus on next quarter?", "--json", "--max-tokens", "24")
    result = json.loads(output.strip().splitlines()[-1])
    assert set(result) == {"answer", "sources", "ttft_s"}
    assert result["answer"].strip() and result["answer"] in output
    source = result["sources"][0]
    assert set(source) >= {"video_id", "title", "url", "start_s", "end_s", "score"}
    assert (source["video_id"], source["start_s"]) == (knowledge["sales"].pk, segment_start(SALES_REVIEW, "European market"))
    assert source["url"].endswith(f"#t={max(int(source['start_s']) - LEAD_IN_S, 0)}")  # opens just before it
    assert result["ttft_s"] > 0


def test_with_a_user_the_exchange_joins_their_history(knowledge):
    user = get_user_model().objects.create_user("mona", password="a long pass phrase 42")
    ask("Who won the 1998 chess olympiad?", "--user", "mona")
    conversation = Conversation.objects.get(user=user)
    assert [message.role for message in conversation.messages.all()] == ["user", "assistant"]


def test_the_source_filter_narrows_the_answer_to_one_source(knowledge):
    question = "How much did revenue grow, and how do I set up the VPN client?"
    unfiltered = json.loads(ask(question, "--json", "--max-tokens", "1").splitlines()[-1])["sources"]
    assert knowledge["sales"].pk in {source["video_id"] for source in unfiltered}
    filtered = json.loads(ask(question, "--json", "--source", str(knowledge["other"].pk), "--max-tokens", "1").splitlines()[-1])
    assert filtered["sources"] and {source["video_id"] for source in filtered["sources"]} == {knowledge["vpn"].pk}


def test_an_unknown_user_and_a_malformed_date_are_clear_errors(knowledge):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        ask("anything", "--user", "nobody")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        ask("anything", "--since", "last week")
