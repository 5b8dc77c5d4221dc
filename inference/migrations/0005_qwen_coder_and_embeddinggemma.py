"""Add Qwen2.5-Coder-1.5B-Instruct and EmbeddingGemma-300M to the built-in catalog (inference.catalog),
and the "unzip" conversion EmbeddingGemma's source needs. The other built-in models are left as they
are, with whatever an admin changed in them."""
from django.db import migrations, models

from inference.catalog import install_built_in_models

NEW_MODELS = {"qwen2.5-coder-1.5b-instruct", "embeddinggemma-300m"}


def add_new_models(apps, schema_editor):
    install_built_in_models(
        apps.get_model("inference", "ModelEntry"), apps.get_model("inference", "ModelSource"), names=NEW_MODELS
    )


def remove_new_models(apps, schema_editor):
    apps.get_model("inference", "ModelEntry").objects.filter(name__in=NEW_MODELS).delete()


class Migration(migrations.Migration):
    dependencies = [("inference", "0004_node_sync_schedule")]

    operations = [
        migrations.AlterField(
            model_name="modelsource",
            name="convert",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "none"),
                    ("ct2-whisper", "CTranslate2 whisper → openai-whisper .pt"),
                    ("unzip", "zip archive of one folder → that folder"),
                ],
                default="",
                max_length=16,
            ),
        ),
        migrations.RunPython(add_new_models, remove_new_models),
    ]
