"""A puller killed mid-download leaves its partial file; the next pull continues from it with Range."""
import hashlib
import os
import re
import signal
import subprocess
import time

import pytest

from inference.cache.store import sha256_of_file
from inference.models import ModelEntry
from tests.conftest import PROJECT_DIR, child_env, manage_py
from tests.inference.http_origin import Origin


@pytest.mark.django_db(transaction=True)
def test_a_pull_killed_mid_download_resumes_from_the_partial_file_instead_of_from_zero(tmp_path):
    payload = os.urandom(16 * 1024 * 1024)
    digest = hashlib.sha256(payload).hexdigest()
    origin = Origin(payload, bytes_per_second=2 * 1024 * 1024)
    model = ModelEntry.objects.create(name="slow-model", kind="llm", format="gguf", size=len(payload), sha256=digest)
    model.sources.create(position=0, kind="url", location=origin.url)
    cache = tmp_path / "cache"
    env = child_env(MODEL_CACHE_DIR=cache)

    puller = subprocess.Popen(manage_py("models", "pull", "slow-model"), env=env, cwd=PROJECT_DIR,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial_bytes = wait_for_partial_bytes(cache, at_least=3 * 1024 * 1024, process=puller)
    puller.send_signal(signal.SIGKILL)
    puller.wait()
    rerun = subprocess.run(manage_py("models", "pull", "slow-model"), env=env, cwd=PROJECT_DIR,
                           capture_output=True, text=True, timeout=120)
    origin.stop()

    assert rerun.returncode == 0, rerun.stderr
    first, second = origin.get_requests()
    assert first[2] is None
    resumed_from = int(re.match(r"bytes=(\d+)-$", second[2]).group(1))
    assert resumed_from >= partial_bytes > 0
    assert sha256_of_file(cache / "blobs" / digest) == digest


def wait_for_partial_bytes(cache, at_least, process, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the pull ended before it could be interrupted"
        sizes = [path.stat().st_size for path in (cache / "partial").glob("*.part")] if (cache / "partial").exists() else []
        if sizes and max(sizes) >= at_least:
            return max(sizes)
        time.sleep(0.05)
    raise AssertionError(f"no partial download reached {at_least} bytes within {timeout_s} s")
