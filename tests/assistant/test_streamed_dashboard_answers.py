"""The ask box's endpoint streams server-sent events: the answer's checked sentences, then the stored answer with
citation links; a follow-up continues the same conversation with its history."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from assistant.answering import LEAD_IN_S
from assistant.models import Conversation, Message
from tests.assistant.knowledge import KITCHEN_SAFETY, segment_start
from tests.assistant.server_sent_events import server_sent_events

# Answers are generated in a thread of their own, which sees committed data only.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def employee(client):
    user = get_user_model().objects.create_user("kim", password="a long pass phrase 42")
    client.force_login(user)
    return user


def test_the_answer_streams_then_arrives_stored_with_citation_links(client, employee, knowledge):
    response = client.post(reverse("ask_stream"), {"question": "Where is the fire extinguisher in the kitchen?"})
    events = server_sent_events(response)
    deltas = [data["text"] for event, data in events if event == "delta"]
    assert deltas
    event, done = events[-1]
    assert event == "done"
    reply = Message.objects.get(role=Message.ASSISTANT)
    assert reply.conversation.user == employee
    # Streamed sentence by sentence once checked (an unfinished last sentence dropped, citations repaired): stored
    # is what was streamed.
    assert reply.content == "".join(deltas)
    expected = int(segment_start(KITCHEN_SAFETY, "fire extinguisher"))
    assert f"watch?v=kitchen0001&amp;t={max(expected - LEAD_IN_S, 0)}s" in done["html"]  # opens just before it
    assert done["conversation_url"] == reverse("conversation", args=[reply.conversation.pk])
    assert done["ttft_s"] > 0


def test_a_follow_up_continues_the_conversation(client, employee, knowledge):
    server_sent_events(client.post(reverse("ask_stream"), {"question": "How much did revenue grow?"}))
    conversation = Conversation.objects.get()
    events = server_sent_events(
        client.post(reverse("ask_stream"), {"question": "And what about churn?", "conversation": conversation.pk})
    )
    assert events[-1][0] == "done"
    assert Conversation.objects.count() == 1
    assert [message.role for message in conversation.messages.all()] == ["user", "assistant"] * 2


def test_a_question_the_knowledge_base_does_not_cover_gets_that_answer_and_no_citation(client, employee, knowledge):
    events = server_sent_events(client.post(reverse("ask_stream"), {"question": "Who won the 1998 chess olympiad?"}))
    assert "does not cover" in "".join(data["text"] for event, data in events if event == "delta")
    assert events[-1][1]["sources"] == []
