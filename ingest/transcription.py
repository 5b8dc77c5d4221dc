"""Speech to timed text: whisper on a WAV file, or a video's own WebVTT subtitles. Django-free.

Both return segments as [{"start": seconds, "end": seconds, "text": "..."}].
"""
import contextlib
import html
import importlib
import types

import tqdm
from yt_dlp import webvtt
from yt_dlp.utils import clean_html

from inference.cache.whisper_ct2 import load_whisper

WEBVTT_TICKS_PER_SECOND = 90_000


def transcribe(checkpoint_path, audio_path, language=None, on_progress=None):
    """Return (segments, language). on_progress(seconds done) follows the end of the last decoded window."""
    model = load_whisper(checkpoint_path)
    with reporting_progress(on_progress):
        result = model.transcribe(
            str(audio_path),
            language=language or None,
            fp16=False,
            verbose=False,
            condition_on_previous_text=False,
        )
    segments = [
        {"start": round(segment["start"], 2), "end": round(segment["end"], 2), "text": segment["text"].strip()}
        for segment in result["segments"]
        if segment["text"].strip()
    ]
    return segments, result.get("language") or language or ""


@contextlib.contextmanager
def reporting_progress(on_progress):
    """whisper's transcribe() reports progress only through a tqdm bar counted in mel frames (100 per
    second), so it is handed a bar that forwards its position."""
    if on_progress is None:
        yield
        return

    class ForwardingBar(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": True})
            self.frames_done = 0

        def update(self, frames=1):
            self.frames_done += frames
            on_progress(self.frames_done / 100.0)

    # The module, which the whisper package shadows with its transcribe() function.
    transcribe_module = importlib.import_module("whisper.transcribe")
    original = transcribe_module.tqdm
    transcribe_module.tqdm = types.SimpleNamespace(tqdm=ForwardingBar)
    try:
        yield
    finally:
        transcribe_module.tqdm = original


def subtitle_segments(vtt_text):
    segments = []
    for block in webvtt.parse_fragment(vtt_text.encode()):
        if isinstance(block, webvtt.CueBlock):
            text = html.unescape(clean_html(block.text)).strip()
            if text:
                segments.append({
                    "start": round(block.start / WEBVTT_TICKS_PER_SECOND, 2),
                    "end": round(block.end / WEBVTT_TICKS_PER_SECOND, 2),
                    "text": text,
                })
    return segments
