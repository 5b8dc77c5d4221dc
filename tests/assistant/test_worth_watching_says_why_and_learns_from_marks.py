""""Worth watching" says why each video is there (a followed source, a past question, a video watched), and
learns from the Watched / Not interested buttons: a watched video leaves the list and lifts videos like it, a
dismissed one leaves it and pushes videos like it down."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from assistant.models import Message, VideoMark
from assistant.selectors import worth_watching
from assistant.services import do_start_conversation
from ingest.models import Subscription
from tests.assistant.knowledge import FIRE_TRAINING, indexed_video

pytestmark = pytest.mark.django_db


@pytest.fixture
def employee():
    return get_user_model().objects.create_user("mika", password="a long pass phrase 42")


@pytest.fixture
def fire_training(knowledge):
    """A fourth video, close in subject to the kitchen safety briefing; the most recently indexed."""
    return indexed_video(knowledge["source"], "fire", "Fire safety training", FIRE_TRAINING)


def listed(user):
    return {item["video"].title: item for item in worth_watching(user, since=None)}


def titles(user):
    return [item["video"].title for item in worth_watching(user, since=None)]


def test_a_video_from_a_followed_source_says_so(employee, knowledge):
    Subscription.objects.create(user=employee, source=knowledge["other"])
    items = listed(employee)
    assert "from Onboarding, a source you follow" in items["VPN onboarding"]["reasons"]
    assert not any("follow" in reason for reason in items["Quarterly sales review"]["reasons"])


def test_a_video_on_a_past_question_names_the_question(employee, knowledge):
    conversation = do_start_conversation(employee, "revenue")
    Message.objects.create(conversation=conversation, role=Message.USER, content="How did revenue and churn develop?")
    items = listed(employee)
    assert items["Quarterly sales review"]["reasons"] == ["you asked “How did revenue and churn develop?”"]
    assert items["Kitchen safety briefing"]["reasons"] == []


def test_a_watched_video_leaves_the_list_and_lifts_videos_like_it(client, employee, knowledge, fire_training):
    assert titles(employee)[-1] == "Kitchen safety briefing"  # no interests yet: the most recently indexed first
    client.force_login(employee)
    response = client.post(reverse("mark_watched", args=[fire_training.pk]))
    assert response.status_code == 302 and response["Location"].endswith("/#worth-watching")
    assert VideoMark.objects.get(user=employee).kind == VideoMark.WATCHED
    items = listed(employee)
    assert "Fire safety training" not in items
    assert titles(employee)[0] == "Kitchen safety briefing"
    assert "like “Fire safety training”, which you watched" in items["Kitchen safety briefing"]["reasons"]


def test_not_interested_removes_the_video_and_pushes_videos_like_it_down(client, employee, knowledge, fire_training):
    assert titles(employee) == ["Fire safety training", "VPN onboarding", "Quarterly sales review", "Kitchen safety briefing"]
    client.force_login(employee)
    client.post(reverse("mark_not_interested", args=[knowledge["kitchen"].pk]))
    assert VideoMark.objects.get(user=employee).kind == VideoMark.NOT_INTERESTED
    # Fire safety is closer to kitchen safety than the VPN set-up is (the sales review shares its filler sentences).
    assert titles(employee) == ["VPN onboarding", "Fire safety training", "Quarterly sales review"]


def test_marks_are_each_employee_s_own(client, employee, knowledge):
    colleague = get_user_model().objects.create_user("noor", password="a long pass phrase 42")
    client.force_login(employee)
    client.post(reverse("mark_not_interested", args=[knowledge["vpn"].pk]))
    assert "VPN onboarding" not in titles(employee)
    assert "VPN onboarding" in titles(colleague)


def test_marks_are_posted_by_a_logged_in_employee(client, employee, knowledge):
    url = reverse("mark_watched", args=[knowledge["vpn"].pk])
    assert client.post(url)["Location"].startswith(reverse("login"))
    client.force_login(employee)
    assert client.get(url).status_code == 405
    assert client.post(reverse("mark_watched", args=[999999])).status_code == 404
    assert not VideoMark.objects.exists()
