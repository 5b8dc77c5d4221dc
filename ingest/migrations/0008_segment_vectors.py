from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0007_summary_key_moments_topics'),
    ]

    operations = [
        migrations.CreateModel(
            name='SegmentVectors',
            fields=[
                ('video', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='segment_vectors', serialize=False, to='ingest.video')),
                ('model', models.CharField(max_length=128)),
                ('dims', models.PositiveIntegerField()),
                ('vectors', models.BinaryField()),
            ],
            options={
                'verbose_name_plural': 'segment vectors',
            },
        ),
    ]
