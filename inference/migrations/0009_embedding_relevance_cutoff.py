"""Each embedding model gets its own relevance cut-off (retrieval read one, set on all-MiniLM-L6-v2's scale, for all)."""

from django.db import migrations, models

from inference.catalog import install_built_in_field


def add_built_in_cutoffs(apps, schema_editor):
    install_built_in_field(apps.get_model("inference", "ModelEntry"), "min_relevance")


class Migration(migrations.Migration):

    dependencies = [
        ('inference', '0008_embeddinggemma_is_a_default_model'),
    ]

    operations = [
        migrations.AddField(
            model_name='modelentry',
            name='min_relevance',
            field=models.FloatField(blank=True, help_text='an embedding model\'s cosine of a question to a chunk below which the chunk is not about the question (retrieval leaves it out): each model has its own scale, so it is measured per model (bench/RESULTS.md, "Evaluation set"); empty for other kinds, and for an imported embedding model until set here', null=True),
        ),
        migrations.RunPython(add_built_in_cutoffs, migrations.RunPython.noop),
    ]
