"""Install the built-in model catalog (inference.catalog)."""
from django.db import migrations

from inference.catalog import built_in_model_names, install_built_in_models


def add_built_in_models(apps, schema_editor):
    install_built_in_models(apps.get_model("inference", "ModelEntry"), apps.get_model("inference", "ModelSource"))


def remove_built_in_models(apps, schema_editor):
    apps.get_model("inference", "ModelEntry").objects.filter(name__in=built_in_model_names()).delete()


class Migration(migrations.Migration):
    dependencies = [("inference", "0002_model_cache")]

    operations = [migrations.RunPython(add_built_in_models, remove_built_in_models)]
