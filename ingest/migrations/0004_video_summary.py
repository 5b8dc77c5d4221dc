"""The video summary model, moved here from the assistant app (assistant 0006 lets go of it).

Only Django's idea of the model moves: it keeps the table assistant_videosummary, with its rows, as it is."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("ingest", "0003_longer_transcript_origin"),
        ("assistant", "0006_video_summary_moves_to_ingest"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="VideoSummary",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("text", models.TextField(blank=True)),
                        ("summarizer", models.CharField(blank=True, max_length=200)),
                        ("claimed_at", models.DateTimeField(blank=True, null=True)),
                        ("written_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "video",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE, related_name="summary", to="ingest.video"
                            ),
                        ),
                    ],
                    options={"db_table": "assistant_videosummary", "verbose_name_plural": "video summaries"},
                ),
            ],
            database_operations=[],
        ),
    ]
