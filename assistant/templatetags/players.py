"""The embedded player for a link to a second of a video: YouTube's embed, or the browser's own <audio>/<video>
for a direct media file, both starting at the link's second. Other pages (Vimeo, a podcast's web page…) cannot be
embedded and seeked reliably, so their links just open in a new tab."""
from pathlib import PurePosixPath
from urllib.parse import parse_qs, urlsplit

from django import template

register = template.Library()
YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
YOUTUBE_PATH_PREFIXES = ("/shorts/", "/live/", "/embed/")
AUDIO_EXTENSIONS = {".mp3", ".m4a", ".aac", ".oga", ".ogg", ".opus", ".wav", ".flac"}
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".webm", ".ogv", ".mov"}


@register.filter
def player(url):
    """{"kind": "youtube" | "audio" | "video", "src", "second"} for a link opening a second, or None when it
    cannot be embedded. The second is the link's own (YouTube's t=, a media fragment's #t=), so the player and the
    link always start at the same moment."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    query = parse_qs(parts.query)
    if host in YOUTUBE_HOSTS or host == "youtu.be":
        video_id = youtube_video_id(host, parts.path, query)
        if not video_id:
            return None
        second = seconds_of(query.get("t", query.get("start", ["0"]))[0])
        return {"kind": "youtube", "second": second,
                "src": f"https://www.youtube-nocookie.com/embed/{video_id}?start={second}&autoplay=1&rel=0"}
    extension = PurePosixPath(parts.path).suffix.lower()
    kind = "audio" if extension in AUDIO_EXTENSIONS else "video" if extension in VIDEO_EXTENSIONS else None
    if kind is None:
        return None
    fragment = parse_qs(parts.fragment)
    # A media fragment is "t=start" or "t=start,end"; the browser itself seeks to it when the media loads.
    second = seconds_of(fragment.get("t", ["0"])[0].split(",")[0])
    return {"kind": kind, "second": second, "src": parts._replace(fragment=f"t={second}").geturl()}


def youtube_video_id(host, path, query):
    if host == "youtu.be":
        return path.strip("/").split("/")[0]
    if path == "/watch":
        return query.get("v", [""])[0]
    for prefix in YOUTUBE_PATH_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):].split("/")[0]
    return ""


def seconds_of(value):
    """Whole seconds from "42", "42.5" or YouTube's "42s"; 0 for anything else."""
    try:
        return max(0, int(float(value.rstrip("s"))))
    except ValueError:
        return 0
