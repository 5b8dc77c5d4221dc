from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html

from ingest import reembedding, selectors, services, tasks
from ingest.models import Chunk, EmbeddingSetting, Job, Source, Video


def progress_bar(percent, label):
    return format_html('<progress value="{}" max="100" style="width:8rem"></progress> {}', round(percent), label)


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "url", "subscriber_count", "progress", "last_synced_at", "last_sync_error"]
    search_fields = ["title", "url"]
    readonly_fields = ["last_synced_at", "last_sync_error", "created_at"]
    actions = ["sync_now"]

    def get_queryset(self, request):
        return selectors.sources_with_progress(super().get_queryset(request)).annotate(
            subscriber_count=Count("subscriptions", distinct=True)
        )

    @admin.display(description="subscribers", ordering="subscriber_count")
    def subscriber_count(self, source):
        return source.subscriber_count

    @admin.display(description="videos indexed")
    def progress(self, source):
        percent = 100 * source.indexed_count / source.video_count if source.video_count else 0
        label = f"{source.indexed_count}/{source.video_count}"
        if source.failed_count:
            label += f", {source.failed_count} failed or skipped"
        return progress_bar(percent, label)

    @admin.action(description="Sync now")
    def sync_now(self, request, queryset):
        for source in queryset:
            tasks.sync_source.delay(source.pk)
        self.message_user(request, f"Syncing {queryset.count()} source(s).", messages.SUCCESS)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["video", "progress", "attempts", "error", "owner", "updated_at"]
    list_filter = ["stage"]
    search_fields = ["video__title", "video__url"]
    readonly_fields = ["video", "stage", "percent", "error", "attempts", "owner", "heartbeat_at", "created_at", "updated_at"]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="progress", ordering="stage")
    def progress(self, job):
        return progress_bar(job.percent, job.progress_label)

    @admin.action(description="Retry the selected failed jobs")
    def retry(self, request, queryset):
        retried = [job.pk for job in queryset if services.do_retry_job(job.pk)]
        for job_id in retried:
            tasks.transcribe_video.delay(job_id)
        self.message_user(request, f"Retrying {len(retried)} failed job(s).", messages.SUCCESS)


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["position", "start_s", "end_s", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = ["__str__", "extractor", "video_id", "duration_s", "published_at", "progress"]
    list_filter = ["extractor", "job__stage"]
    search_fields = ["title", "url", "video_id"]
    readonly_fields = ["extractor", "video_id", "url", "duration_s", "published_at", "language", "transcript_origin", "sources"]
    exclude = ["segments"]
    inlines = [ChunkInline]

    def has_add_permission(self, request):
        return False

    @admin.display(description="progress")
    def progress(self, video):
        job = getattr(video, "job", None)
        return progress_bar(job.percent, job.progress_label) if job else "-"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("job")

    # Deleting goes through the service so that every node's index drops the video's vectors too.
    def delete_model(self, request, video):
        services.do_remove_video(video)

    def delete_queryset(self, request, queryset):
        for video in queryset:
            services.do_remove_video(video)


class EmbeddingModelForm(forms.ModelForm):
    embedding_model = forms.ChoiceField(
        help_text="Choosing another model embeds every chunk again in the background; questions use the current "
        "model until that is complete. Choosing the current model cancels a switch in progress."
    )

    class Meta:
        model = EmbeddingSetting
        fields = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["embedding_model"].choices = [(name, name) for name in selectors.embedding_model_names()]
        self.fields["embedding_model"].initial = self.instance.target_model or self.instance.active_model


@admin.register(EmbeddingSetting)
class EmbeddingSettingAdmin(admin.ModelAdmin):
    """The cluster's embedding model (INGEST_EMBEDDING_MODEL until changed here) and the progress of a switch."""

    form = EmbeddingModelForm
    list_display = ["active_model", "switch", "switched_at"]
    fields = ["active_model", "embedding_model", "switch", "owner", "switched_at"]
    readonly_fields = ["active_model", "switch", "owner", "switched_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, setting=None):
        return False

    def changelist_view(self, request, extra_context=None):
        EmbeddingSetting.current()  # the row exists from the first look on, with the environment's model
        return super().changelist_view(request, extra_context)

    @admin.display(description="re-embedding")
    def switch(self, setting):
        if not (setting.is_switching or setting.error):
            return "-"
        return progress_bar(setting.percent, setting.progress_label)

    def save_model(self, request, setting, form, change):
        # Not setting.save(): the switch is the service's, and the re-embedding job writes this row meanwhile.
        if reembedding.do_choose_embedding_model(form.cleaned_data["embedding_model"]):
            tasks.reembed_chunks.delay()
