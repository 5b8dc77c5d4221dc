""""Worth watching": videos indexed since the employee's last visit, closest to their subscriptions and past
questions first, each with the summary made when it was indexed."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from assistant.models import DashboardVisit, Message
from assistant.selectors import worth_watching
from assistant.services import do_record_dashboard_visit, do_start_conversation
from ingest.models import Job, Subscription, VideoSummary
from ingest.summaries import do_summarize_video

pytestmark = pytest.mark.django_db


@pytest.fixture
def employee():
    return get_user_model().objects.create_user("lena", password="a long pass phrase 42")


def titles(items):
    return [item["video"].title for item in items]


def test_subscriptions_rank_their_kind_of_video_first(employee, knowledge):
    Subscription.objects.create(user=employee, source=knowledge["other"])
    assert titles(worth_watching(employee, since=None))[0] == "VPN onboarding"


def test_past_questions_rank_videos_on_their_topic_first(employee, knowledge):
    conversation = do_start_conversation(employee, "revenue")
    Message.objects.create(conversation=conversation, role=Message.USER, content="How did revenue and churn develop?")
    assert titles(worth_watching(employee, since=None))[0] == "Quarterly sales review"


def test_only_videos_indexed_since_the_last_visit_are_listed(employee, knowledge):
    Job.objects.filter(video=knowledge["kitchen"]).update(updated_at=timezone.now() - timedelta(hours=2))
    since = timezone.now() - timedelta(hours=1)
    assert "Kitchen safety briefing" not in titles(worth_watching(employee, since))
    assert len(worth_watching(employee, since)) == 2


def test_reloading_within_a_visit_keeps_the_same_start_and_a_later_visit_moves_it(employee):
    assert do_record_dashboard_visit(employee) is None
    first_seen = DashboardVisit.objects.get().last_seen_at
    assert do_record_dashboard_visit(employee) is None
    DashboardVisit.objects.update(last_seen_at=first_seen - DashboardVisit.VISIT_GAP * 2)
    assert do_record_dashboard_visit(employee) == first_seen - DashboardVisit.VISIT_GAP * 2


def summarize_without_an_llm(knowledge):
    for name in ("kitchen", "sales", "vpn"):
        do_summarize_video(knowledge[name].pk, model_name="no-such-llm")


def test_without_an_llm_the_summary_is_distinct_sentences_of_the_video_itself_in_spoken_order(knowledge):
    summarize_without_an_llm(knowledge)
    summary = VideoSummary.objects.get(video=knowledge["kitchen"])
    spoken = dict.fromkeys(segment["text"] for segment in knowledge["kitchen"].segments)  # filler is said thrice
    picked = [text for text in spoken if text in summary.text]
    assert len(picked) == 3 and summary.text == " ".join(picked)
    assert summary.kind == VideoSummary.EXTRACTIVE and summary.fallback_reason.startswith("LLM no-such-llm unavailable")
    starts = [moment["start_s"] for moment in summary.key_moments]
    assert 3 <= len(starts) <= 6 and starts == sorted(starts) and starts[0] == 0.0
    assert set(starts) <= {segment["start"] for segment in knowledge["kitchen"].segments}
    assert summary.topics


def test_the_dashboard_shows_each_new_video_with_its_summary_labelled_its_moments_and_link(client, employee, knowledge):
    summarize_without_an_llm(knowledge)
    client.force_login(employee)
    page = client.get(reverse("dashboard")).content.decode()
    section = page[page.index('id="worth-watching"'):]
    for video in (knowledge["kitchen"], knowledge["sales"], knowledge["vpn"]):
        assert f'href="{video.url}"' in section
        assert video.summary.text in section
        second = int(video.summary.key_moments[1]["start_s"])
        assert f'href="{video.url}#t={second}"' in section or f'href="{video.url}&amp;t={second}s"' in section
    assert section.count("Taken word for word from the transcript") == 3
