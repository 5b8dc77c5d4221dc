"""Summaries are written by ingestion, so their model moves to the ingest app (ingest 0004 takes it over).

Only Django's idea of the model moves: the table assistant_videosummary and its rows stay as they are."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("assistant", "0005_summary_written_at_ingestion"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="VideoSummary")],
            database_operations=[],
        ),
    ]
