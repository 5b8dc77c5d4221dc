"""Video summaries moved from the assistant app to ingest without losing a row: the migrations move only
Django's idea of the model; the table and its rows stay as they were."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from ingest.models import VideoSummary

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_THE_MOVE = [("assistant", "0005_summary_written_at_ingestion"), ("ingest", "0003_longer_transcript_origin")]


def migrate_to(targets):
    """Migrate the test database to the targets; return the models as they were there."""
    MigrationExecutor(connection).migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def latest_migrations():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_a_summary_written_before_the_move_is_read_through_ingest_after_it():
    written_at = timezone.now()
    try:
        before = migrate_to(BEFORE_THE_MOVE)
        video = before.get_model("ingest", "Video").objects.create(
            extractor="Generic", video_id="kept", url="https://media.example/kept.mp3"
        )
        before.get_model("assistant", "VideoSummary").objects.create(
            video=video, text="The fire extinguisher hangs by the door.", written_at=written_at
        )
    finally:
        migrate_to(latest_migrations())

    summary = VideoSummary.objects.get(video_id=video.pk)
    assert summary.text == "The fire extinguisher hangs by the door."
    assert summary.written_at == written_at and summary.video.video_id == "kept"
