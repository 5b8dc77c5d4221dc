"""What each catalog LLM writes as a video's summary, key moments and topics, and whether it passes the checks.

Two test talks, as their scripts' sentences (6 s apart) or, with --spoken, spoken with espeak-ng and transcribed
with whisper-tiny.en as ingestion does with the test feed; each LLM (this node's engine) then writes the digest
through ingest.summaries.write_digest, the function the ingest worker runs. Prints, per model and talk: seconds, kind, the text, every rejected summary with the check it
failed, key moments and topics; the last line is JSON.

    VAR_DIR=/tmp/bench-var .venv/bin/python manage.py migrate
    VAR_DIR=/tmp/bench-var REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/summaries.py \
        [--models NAME ...] [--talks TITLE ...] [--spoken]
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")

import django  # noqa: E402

django.setup()

from inference.core.engine import Engine  # noqa: E402
from inference.services import do_fetch_model  # noqa: E402
from ingest.summaries import write_digest  # noqa: E402
from ingest.transcription import transcribe  # noqa: E402
from tests.assistant.knowledge import KITCHEN_SAFETY, timed_segments  # noqa: E402
from tests.ingest.media_site import speak  # noqa: E402
from tests.ingest.talks import LONG_TALK  # noqa: E402

TALKS = {"Monthly engineering update": LONG_TALK, "Kitchen safety briefing": KITCHEN_SAFETY}
MODELS = ["smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct"]


def spoken_transcripts(directory):
    whisper = do_fetch_model("whisper-tiny.en")
    transcripts = {}
    for index, (title, sentences) in enumerate(TALKS.items()):
        audio = Path(directory) / f"talk-{index}.mp3"
        speak(" ".join(sentences), audio)
        transcripts[title], _ = transcribe(whisper, audio, language="en")
    return transcripts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--talks", nargs="+", choices=list(TALKS), default=list(TALKS))
    parser.add_argument("--spoken", action="store_true", help="speak and transcribe the talks (slow)")
    args = parser.parse_args()
    if args.spoken:
        with tempfile.TemporaryDirectory() as directory:
            transcripts = spoken_transcripts(directory)
    else:
        transcripts = {title: timed_segments(sentences) for title, sentences in TALKS.items()}
    transcripts = {title: segments for title, segments in transcripts.items() if title in args.talks}
    rows = []
    for model_name in args.models:
        engine = Engine(do_fetch_model(model_name))
        for title, segments in transcripts.items():
            started = time.perf_counter()
            digest = write_digest(title, segments, engine, model_name)
            seconds = time.perf_counter() - started
            print(f"\n=== {model_name} · {title} · {len(segments)} segments · {seconds:.0f} s · {digest.kind}")
            print(f"summary: {digest.text}")
            for text, problem in digest.rejected:
                print(f"rejected ({problem}): {text}")
            for moment in digest.key_moments:
                print(f"  {moment['start_s']:>6.1f} s  {moment['title']}")
            print(f"topics: {', '.join(digest.topics)}")
            rows.append({"model": model_name, "talk": title, "seconds": round(seconds, 1), "kind": digest.kind,
                         "text": digest.text, "rejected": digest.rejected, "key_moments": digest.key_moments,
                         "topics": digest.topics})
    print(json.dumps(rows, ensure_ascii=False))


if __name__ == "__main__":
    main()
