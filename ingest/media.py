"""Fetch a video's metadata, audio (16 kHz mono WAV, what whisper consumes) and subtitles with yt-dlp.

Django-free. Errors come out as MediaError with a readable message and whether retrying may help.
"""
import os
import shutil
import wave
from pathlib import Path

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, ExtractorError

from inference.plumbing.disk import NoSpaceError, is_no_space
from ingest.discovery import QUIET_PARAMS, SKIPPED_LIVE_STATUSES, clean_message

SAMPLE_RATE = 16000
AUDIO_NAME = "audio"
SUBTITLE_FORMAT = "vtt"
WAV_BYTES_PER_SECOND = SAMPLE_RATE * 2  # 16-bit mono
# A download that failed with less than this left beside it failed for lack of space: neither yt-dlp nor
# ffmpeg's last line of output (all that yt-dlp keeps) says so.
NEARLY_FULL_BYTES = 1024 * 1024


class MediaError(Exception):
    def __init__(self, message, transient=False, no_space=False):
        super().__init__(message)
        self.transient = transient
        self.no_space = no_space  # the disk's fault, not the video's: waited out without counting an attempt


def probe(url):
    """The full metadata of one video, without downloading it."""
    with yt_dlp.YoutubeDL(QUIET_PARAMS) as ydl:
        try:
            info = ydl.extract_info(url, download=False)
        except DownloadError as error:
            raise as_media_error(error) from None
    if info.get("_type") in ("playlist", "multi_video"):
        raise MediaError(f"{url} is a list of videos, not one video")
    return info


def refusal_reason(info, max_duration_s):
    """Why this video must not be downloaded, or an empty string."""
    if info.get("live_status") in SKIPPED_LIVE_STATUSES:
        return SKIPPED_LIVE_STATUSES[info["live_status"]]
    too_long = over_length_reason(info.get("duration"), max_duration_s)
    if too_long:
        return too_long
    if not any(fmt.get("acodec") != "none" for fmt in info.get("formats") or [info]):
        return "the URL has no audio to transcribe"
    return ""


def over_length_reason(duration_s, max_duration_s):
    if duration_s and max_duration_s and duration_s > max_duration_s:
        return f"the video lasts {format_seconds(duration_s)}, over the {format_seconds(max_duration_s)} limit"
    return ""


def download_audio(info, directory, on_progress=None):
    """Download the best audio of a probed video and convert it with ffmpeg; return the WAV path.

    A full disk is a transient MediaError in one line (the job is retried once space may have returned); a
    video whose length is known is refused before downloading when it cannot fit. What a failed download
    leaves in `directory` is never taken for the audio: the caller removes the directory."""
    directory = Path(directory)
    needed = audio_bytes_needed(info)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if is_no_space(error):
            raise no_space_for_audio(directory, needed) from None
        raise
    if needed and shutil.disk_usage(directory).free < needed:
        raise no_space_for_audio(directory, needed)
    params = {
        **QUIET_PARAMS,
        "format": "bestaudio/best",
        # yt-dlp's own HLS downloader, not ffmpeg's: ffmpeg would connect outside public_connections_only.
        "hls_prefer_native": True,
        "outtmpl": str(directory / f"{AUDIO_NAME}.%(ext)s"),
        "overwrites": True,
        "postprocessors": [{"key": "FFmpegExtractAudio", "preferredcodec": "wav"}],
        "postprocessor_args": {"extractaudio": ["-ar", str(SAMPLE_RATE), "-ac", "1"]},
        "progress_hooks": [progress_hook(on_progress)] if on_progress else [],
    }
    with yt_dlp.YoutubeDL(params) as ydl:
        try:
            ydl.process_ie_result(dict(info), download=True)
        except DownloadError as error:
            if shutil.disk_usage(directory).free < NEARLY_FULL_BYTES:
                raise no_space_for_audio(directory, needed) from None
            raise as_media_error(error) from None
    path = directory / f"{AUDIO_NAME}.wav"
    if not path.exists():
        raise MediaError("the download produced no audio file")
    return path


def audio_bytes_needed(info):
    """The download plus its WAV, when the listing or probe tells the length (0 when it does not)."""
    duration_s = info.get("duration") or 0
    if not duration_s:
        return 0
    return int((info.get("filesize") or info.get("filesize_approx") or 0) + duration_s * WAV_BYTES_PER_SECOND)


def no_space_for_audio(directory, needed_bytes):
    return MediaError(str(NoSpaceError("audio download", directory, needed_bytes or None)), transient=True, no_space=True)


def progress_hook(on_progress):
    def hook(status):
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if status.get("status") == "downloading" and total:
            on_progress(100.0 * status.get("downloaded_bytes", 0) / total)

    return hook


def wav_duration_s(path):
    with wave.open(os.fspath(path)) as audio:
        return audio.getnframes() / audio.getframerate()


def manual_subtitles_url(info, language):
    """The URL of the uploader's own (not automatic) subtitles in `language` or, without one, in any
    language, as WebVTT; None when the video has none."""
    subtitles = info.get("subtitles") or {}
    languages = [language] if language in subtitles else sorted(subtitles)
    for code in languages:
        for track in subtitles[code]:
            if track.get("ext") == SUBTITLE_FORMAT and track.get("url"):
                return code, track["url"]
    return None


def fetch_text(url):
    with yt_dlp.YoutubeDL(QUIET_PARAMS) as ydl:
        try:
            return ydl.urlopen(url).read().decode("utf-8", errors="replace")
        except (TransportError, HTTPError) as error:
            raise MediaError(f"cannot fetch subtitles: {error}", transient=is_transient(error)) from None


def as_media_error(error):
    return MediaError(clean_message(error), transient=is_transient(error))


def is_transient(error):
    """Network trouble and server-side errors are worth retrying; a private, removed or unsupported video is
    not."""
    seen = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, HTTPError):
            return current.status >= 500 or current.status in (408, 429)
        if isinstance(current, TransportError):
            return True
        if isinstance(current, ExtractorError) and current.expected:
            return False
        exc_info = getattr(current, "exc_info", None)
        pending += [exc_info[1] if exc_info else None, getattr(current, "cause", None), current.__cause__]
    return False


def format_seconds(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
