""""Worth watching" verdicts: the dashboard's Watched and Not interested buttons post here."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from assistant.models import VideoMark
from assistant.services import do_mark_video
from ingest.models import Video


@login_required
@require_POST
def mark_watched(request, video_id):
    return mark(request, video_id, VideoMark.WATCHED)


@login_required
@require_POST
def mark_not_interested(request, video_id):
    return mark(request, video_id, VideoMark.NOT_INTERESTED)


def mark(request, video_id, kind):
    do_mark_video(request.user, get_object_or_404(Video, pk=video_id), kind)
    return redirect(reverse("dashboard") + "#worth-watching")
