import pytest
from django_celery_beat.models import PeriodicTask

from assistant.celery import app
from ingest import selectors
from ingest.models import Source, Subscription

pytestmark = pytest.mark.django_db


def test_a_nightly_sync_of_all_sources_is_scheduled_at_two_in_the_morning():
    task = PeriodicTask.objects.get(name="sync all sources")
    assert task.enabled and task.task == "ingest.tasks.sync_all_sources"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "2", "*")
    app.loader.import_default_modules()
    assert task.task in app.tasks


def test_only_sources_somebody_subscribes_to_are_synced(django_user_model):
    user = django_user_model.objects.create_user("ada")
    followed = Source.objects.create(url="https://example.com/followed.xml")
    Source.objects.create(url="https://example.com/abandoned.xml")
    Subscription.objects.create(user=user, source=followed)
    assert selectors.source_ids_to_sync() == [followed.pk]
