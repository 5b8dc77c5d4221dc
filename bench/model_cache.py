"""Model cache performance, each number next to a reference measured in the same run.

    .venv/bin/python bench/model_cache.py        # needs smollm2-135m-instruct in the cache: manage.py models pull smollm2-135m-instruct

1. Peer copy: MB/s of a blob fetched from a peer's blob server over loopback (http_fetch.download), against
   copying the same file locally (shutil.copyfile): the HTTP overhead of sharing.
2. Shard-aware fetch: bytes and time of fetching layers 0-9 of SmolLM2's 30 (header + their tensors) against
   fetching the whole file from the same peer.
3. Verification: MB/s of sha256_of_file against the `sha256sum` command on the same blob.
"""
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from inference.cache.gguf_shards import fetch_gguf_layers  # noqa: E402
from inference.cache.http_fetch import download  # noqa: E402
from inference.cache.peer_server import TOKEN_HEADER, PeerServer  # noqa: E402
from inference.cache.store import BlobStore, sha256_of_file  # noqa: E402
from inference.plumbing.config import model_cache_dir  # noqa: E402

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
TOKEN = "bench-token"


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def main():
    store = BlobStore(model_cache_dir())
    if not store.has_blob(SMOLLM2_SHA256):
        sys.exit("smollm2-135m-instruct is not cached; run: manage.py models pull smollm2-135m-instruct")
    blob = store.blob_path(SMOLLM2_SHA256)
    size_mb = blob.stat().st_size / 1e6
    server = PeerServer(store, TOKEN, host="127.0.0.1").start()
    url = f"http://127.0.0.1:{server.port}/blobs/{SMOLLM2_SHA256}"
    headers = {TOKEN_HEADER: TOKEN}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        local_s, _ = timed(lambda: shutil.copyfile(blob, scratch / "copy"))
        peer_s, _ = timed(lambda: download(url, scratch / "peer.part", headers=headers))
        print(f"1. peer copy {size_mb / peer_s:8.1f} MB/s   local copy {size_mb / local_s:8.1f} MB/s   "
              f"ratio {local_s / peer_s:.2f}")

        shard_s, shard_bytes = timed(lambda: fetch_gguf_layers(url, scratch / "shard.gguf", range(0, 10), headers=headers))
        print(f"2. layers 0-9: {shard_bytes / 1e6:.1f} MB of {size_mb:.1f} MB "
              f"(ratio {shard_bytes / 1e6 / size_mb:.2f}) in {shard_s:.2f} s   whole file {peer_s:.2f} s "
              f"(time ratio {shard_s / peer_s:.2f})")

        ours_s, _ = timed(lambda: sha256_of_file(blob))
        theirs_s, _ = timed(lambda: subprocess.run(["sha256sum", str(blob)], check=True, capture_output=True))
        print(f"3. sha256_of_file {size_mb / ours_s:8.1f} MB/s   sha256sum {size_mb / theirs_s:8.1f} MB/s   "
              f"ratio {theirs_s / ours_s:.2f}")
    server.stop()


if __name__ == "__main__":
    main()
