"""The model cache on a tiny filesystem: a pull that does not fit fails with one line naming the cache and the
space it needs, leaves no blob that `models verify` could find wrong, and succeeds (resuming its download)
once space is freed."""
import hashlib
import os
import re
import subprocess

import pytest

from inference.cache.store import sha256_of_file
from inference.models import ModelEntry
from tests.conftest import PROJECT_DIR, child_env, manage_py
from tests.inference.http_origin import Origin
from tests.tiny_filesystem import tiny_filesystem

MB = 1024 * 1024
PROGRESS_BAR = re.compile(r"^roomy-model: .*B/s\]\s*$")


@pytest.fixture
def tiny_disk(tmp_path):
    with tiny_filesystem(tmp_path / "tiny", size="20m") as mount_point:
        yield mount_point


@pytest.mark.django_db(transaction=True)
def test_a_pull_onto_a_full_disk_fails_with_one_line_leaves_the_cache_clean_and_succeeds_once_space_is_freed(tiny_disk):
    payload = os.urandom(14 * MB)
    digest = hashlib.sha256(payload).hexdigest()
    origin = Origin(payload)
    # A whisper checkpoint: the bytes are random, and a pulled LLM's GGUF would be read for its profile.
    model = ModelEntry.objects.create(name="roomy-model", kind="whisper", format="whisper-pt", size=len(payload), sha256=digest)
    model.sources.create(position=0, kind="url", location=origin.url)
    cache = tiny_disk / "cache"
    filler = tiny_disk / "someone-elses-file"
    filler.write_bytes(b"\0" * 10 * MB)
    env = child_env(MODEL_CACHE_DIR=cache)

    def models(*args):
        return subprocess.run(manage_py("models", *args), env=env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)

    try:
        failed = models("pull", "roomy-model")
        verified = models("verify")
        blobs_when_full = [path.name for path in (cache / "blobs").iterdir() if not path.name.startswith(".")]
        filler.unlink()
        pulled = models("pull", "roomy-model")
    finally:
        origin.stop()

    assert failed.returncode == 1
    # stderr also carries the progress bar (tqdm): everything else is the one error line.
    error_lines = [line for line in failed.stderr.splitlines() if line.strip() and not PROGRESS_BAR.match(line)]
    assert len(error_lines) == 1, failed.stderr
    assert re.search(rf"roomy-model: model cache: no space left on {re.escape(str(cache))}\S* \(needs 14 MB\)", error_lines[0])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "nothing cached on this node" in verified.stdout
    assert blobs_when_full == []

    assert pulled.returncode == 0, pulled.stderr
    first, second = origin.get_requests()
    assert first[2] is None and re.match(r"bytes=[1-9]\d*-$", second[2]), "the second pull resumes the first one's bytes"
    assert sha256_of_file(cache / "blobs" / digest) == digest
    assert not list(cache.glob("blobs/.*.tmp")) and not list(cache.glob("partial/*.part"))
