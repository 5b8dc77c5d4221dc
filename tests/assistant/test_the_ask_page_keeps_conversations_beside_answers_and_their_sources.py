"""The Ask page is a chat: one's conversations listed on the side (the open one marked), the thread of questions
and answers, each answer with its sources beside it, ready to play at the cited second, and the ask box under it."""
import pytest
from django.urls import reverse

from assistant.models import Conversation, Message

pytestmark = pytest.mark.django_db
SOURCES = [
    {"n": 1, "video_id": 1, "title": "Monthly engineering update", "url": "http://media.example/talk-update.mp3#t=38",
     "start_s": 41.2, "end_s": 45.0, "score": 0.7},
    {"n": 2, "video_id": 2, "title": "Kitchen safety briefing", "url": "https://www.youtube.com/watch?v=kitchen0001&t=40s",
     "start_s": 42.0, "end_s": 48.0, "score": 0.4},
    {"n": 3, "video_id": 3, "title": "Intranet page", "url": "https://intranet.example/backups", "start_s": 3.0,
     "end_s": 9.0, "score": 0.3},
]


@pytest.fixture
def employee(client, django_user_model):
    user = django_user_model.objects.create_user("mio", password="a long pass phrase 42")
    client.force_login(user)
    return user


def conversation(user, title, answer="", sources=()):
    thread = Conversation.objects.create(user=user, title=title)
    Message.objects.create(conversation=thread, role=Message.USER, content=title)
    Message.objects.create(conversation=thread, role=Message.ASSISTANT, content=answer, sources=list(sources))
    return thread


def test_the_conversations_are_listed_with_the_open_one_marked(client, employee):
    older = conversation(employee, "Where is the VPN guide?")
    current = conversation(employee, "When is the database backed up?")
    page = client.get(reverse("conversation", args=[current.pk])).content.decode()
    listing = page[page.index('id="conversation-list"'):page.index("</nav>", page.index('id="conversation-list"'))]
    assert f'href="{reverse("conversation", args=[current.pk])}" data-conversation="{current.pk}" aria-current="page"' in listing
    assert f'href="{reverse("conversation", args=[older.pk])}" data-conversation="{older.pk}">' in listing
    assert listing.index("When is the database") < listing.index("Where is the VPN"), "the latest first"
    assert f'href="{reverse("ask")}"' in listing, "a new conversation is one click away"


def test_each_answer_has_its_sources_beside_it_ready_to_play_at_the_cited_second(client, employee):
    thread = conversation(employee, "When is the database backed up?", "Every night at three o'clock [1].", SOURCES)
    page = client.get(reverse("conversation", args=[thread.pk])).content.decode()
    thread_html = page[page.index('id="thread"'):page.index('id="ask-form"')]

    assert '<p class="question">When is the database backed up?</p>' in thread_html
    answer = thread_html[thread_html.index('<article class="answer"'):thread_html.index("</article>")]
    assert 'class="citation" href="http://media.example/talk-update.mp3#t=38"' in answer
    sources = answer[answer.index('<aside class="answer-sources"'):]
    assert '<div class="player" hidden></div>' in sources
    assert 'data-n="1" data-player="audio" data-player-src="http://media.example/talk-update.mp3#t=38" data-second="38"' in sources
    assert ('data-n="2" data-player="youtube" data-player-src="https://www.youtube-nocookie.com/embed/kitchen0001?start=40'
            in sources)
    assert 'data-n="3">' in sources, "a page that cannot be embedded opens in a new tab instead"
    assert "at 41 s" in sources


def test_an_answer_without_sources_takes_the_whole_width(client, employee):
    thread = conversation(employee, "What is quantum chromodynamics?", "The knowledge base does not cover this.")
    page = client.get(reverse("conversation", args=[thread.pk])).content.decode()
    assert '<article class="answer"' in page and "answer-sources" not in page


def test_a_new_conversation_starts_with_an_empty_thread_and_the_ask_box(client, employee):
    page = client.get(reverse("ask")).content.decode()
    assert '<div id="thread" class="thread" data-follow-conversation></div>' in page
    assert 'id="ask-form"' in page and 'name="conversation"' not in page
