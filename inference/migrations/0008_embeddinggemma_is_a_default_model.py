"""EmbeddingGemma-300M becomes a default model (pulled by `manage.py up`): it is the default embedding model,
chosen on the evaluation set (bench/RESULTS.md). The admin's later changes to other models are left alone."""
from django.db import migrations


def make_default(apps, schema_editor):
    apps.get_model("inference", "ModelEntry").objects.filter(name="embeddinggemma-300m").update(is_default=True)


def make_optional(apps, schema_editor):
    apps.get_model("inference", "ModelEntry").objects.filter(name="embeddinggemma-300m").update(is_default=False)


class Migration(migrations.Migration):
    dependencies = [("inference", "0007_model_marks_and_llm_profiles")]

    operations = [migrations.RunPython(make_default, make_optional)]
