import importlib

import pytest
from django.apps import apps
from django_celery_beat.models import PeriodicTask

from assistant.celery import app
from ingest import selectors
from ingest.models import Source, Subscription

pytestmark = pytest.mark.django_db

NIGHTLY_SYNC_MIGRATION = importlib.import_module("ingest.migrations.0002_nightly_sync")


def test_a_nightly_sync_of_all_sources_is_scheduled_at_two_in_the_morning():
    # The schedule is migration data, which a transactional test before this one may have flushed away.
    NIGHTLY_SYNC_MIGRATION.create_nightly_sync(apps, None)
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
