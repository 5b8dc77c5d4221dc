"""A conversation is private to its owner: another employee gets a 404, never a glimpse; staff read it in
the admin but cannot change it."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from assistant.models import Conversation, Message
from assistant.services import do_start_conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def owners_conversation():
    owner = get_user_model().objects.create_user("gina", password="a long pass phrase 42")
    conversation = do_start_conversation(owner, "What did the CFO say about hiring?")
    Message.objects.create(conversation=conversation, role=Message.USER, content="What did the CFO say about hiring?")
    Message.objects.create(conversation=conversation, role=Message.ASSISTANT, content="A hiring freeze until March [1].",
                           sources=[{"n": 1, "video_id": 1, "title": "All hands", "url": "https://media.example/a.mp3#t=75",
                                     "start_s": 75.0, "end_s": 80.0, "score": 0.7}])
    return conversation


@pytest.fixture
def other_employee():
    return get_user_model().objects.create_user("hugo", password="a long pass phrase 42")


def test_the_owner_reads_the_conversation_with_clickable_citations(client, owners_conversation):
    client.force_login(owners_conversation.user)
    response = client.get(reverse("conversation", args=[owners_conversation.pk]))
    assert response.status_code == 200
    assert b'href="https://media.example/a.mp3#t=75"' in response.content
    assert b"hiring freeze" in response.content


def test_another_employee_gets_a_404(client, owners_conversation, other_employee):
    client.force_login(other_employee)
    response = client.get(reverse("conversation", args=[owners_conversation.pk]))
    assert response.status_code == 404
    assert b"hiring" not in response.content


def test_another_employee_cannot_continue_it(client, owners_conversation, other_employee):
    client.force_login(other_employee)
    response = client.post(reverse("ask_stream"), {"question": "And after March?", "conversation": owners_conversation.pk})
    assert response.status_code == 404
    assert owners_conversation.messages.count() == 2


def test_history_lists_only_ones_own_conversations(client, owners_conversation, other_employee):
    do_start_conversation(other_employee, "Where is the VPN guide?")
    client.force_login(other_employee)
    page = client.get(reverse("ask")).content
    assert b"Where is the VPN guide?" in page and b"CFO" not in page
    assert b"CFO" not in client.get(reverse("dashboard")).content


def test_staff_see_conversations_in_the_admin_read_only(admin_client, owners_conversation):
    change_url = reverse("admin:assistant_conversation_change", args=[owners_conversation.pk])
    page = admin_client.get(change_url)
    assert page.status_code == 200 and b"hiring freeze" in page.content
    assert admin_client.post(change_url, {"title": "renamed"}).status_code == 403
    assert admin_client.get(reverse("admin:assistant_conversation_add")).status_code == 403
    assert Conversation.objects.get().title == owners_conversation.title
