"""Content-addressed blob store: every artifact is a file named by its sha256.

Layout under the cache root:
    blobs/<sha256>          the artifact (a .gguf, a whisper .pt, or a directory packed as a tar)
    unpacked/<sha256>/      a tar blob unpacked, for models that are directories
    refs/<model name>       the sha256 of the model's blob; its mtime is the model's last use (LRU)
    partial/<key>.part      downloads in progress, kept across crashes so they resume
    shards/                 GGUFs fetched in part (header + some layers' tensors), never served to peers
    quarantine/             blobs that failed verification, kept for inspection
    locks/                  file locks: several processes on one node share the store safely
"""
import hashlib
import os
import re
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from inference.plumbing.disk import NoSpaceError, no_space_as, replace_durably, write_bytes_atomically

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
HASH_CHUNK_BYTES = 4 * 1024 * 1024
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# How a full disk is named in the one line it fails with.
FULL_DISK_LABEL = "model cache"


class StoreError(Exception):
    """A cache operation that cannot be done; the message says which blob or model and why."""


@dataclass(frozen=True)
class CachedModel:
    name: str
    sha256: str
    size: int
    last_used: float


def is_sha256(text):
    return bool(SHA256_PATTERN.match(text or ""))


def sha256_of_file(path, progress=None):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def _bytes_under(folder):
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def pack_directory(source_dir, destination):
    """A tar of the directory that is byte-identical for identical contents, so its sha256 names it."""
    source_dir = Path(source_dir)

    def normalized(info):
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755 if info.isdir() else 0o644
        return info

    with tarfile.open(destination, "w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(source_dir.rglob("*")):
            if path.is_file() or path.is_dir():
                archive.add(path, arcname=path.relative_to(source_dir).as_posix(), recursive=False, filter=normalized)


class BlobStore:
    def __init__(self, root):
        self.root = Path(root)
        for folder in ("blobs", "unpacked", "refs", "partial", "shards", "quarantine", "locks"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ paths and locks

    def blob_path(self, sha256):
        if not is_sha256(sha256):
            raise StoreError(f"not a sha256 digest: {sha256!r}")
        return self.root / "blobs" / sha256

    def partial_path(self, key):
        return self.root / "partial" / f"{key}.part"

    def shard_path(self, sha256, label):
        return self.root / "shards" / f"{self.blob_path(sha256).name}.{label}.gguf"

    def lock(self, name):
        """A lock shared by every process on this node; the OS releases it when a holder dies."""
        return FileLock(str(self.root / "locks" / f"{name}.lock"))

    def _ref_path(self, model_name):
        if not MODEL_NAME_PATTERN.match(model_name):
            raise StoreError(f"not a model name: {model_name!r}")
        return self.root / "refs" / model_name

    def _stamp_path(self, sha256):
        return self.root / "blobs" / f".{sha256}.verified"

    # ------------------------------------------------------------------ blobs

    def has_blob(self, sha256):
        return self.blob_path(sha256).is_file()

    def add_file(self, source, expected_sha256=None, move=False):
        """Hash `source`, then move or copy it into the store atomically; returns its sha256.

        A digest that differs from `expected_sha256` raises StoreError and leaves the store unchanged. The
        bytes reach the disk (fsync) before the blob takes its name, so a blob is never a half-written file;
        a full disk raises NoSpaceError and leaves nothing behind.
        """
        source = Path(source)
        digest = sha256_of_file(source)
        if expected_sha256 and digest != expected_sha256:
            raise StoreError(f"{source}: sha256 is {digest}, expected {expected_sha256}")
        destination = self.blob_path(digest)
        with self.lock(digest):
            if not destination.is_file():
                temporary = destination.with_name(f".{digest}.{os.getpid()}.tmp")
                try:
                    with no_space_as(FULL_DISK_LABEL, self.root, source.stat().st_size):
                        if move:
                            shutil.move(source, temporary)
                        else:
                            shutil.copyfile(source, temporary)
                        replace_durably(temporary, destination)
                except BaseException:
                    temporary.unlink(missing_ok=True)
                    raise
            elif move:
                source.unlink()
            self._write_stamp(digest)
        return digest

    def add_directory(self, source_dir, expected_sha256=None):
        packed = self.root / "partial" / f"pack.{os.getpid()}.tar"
        try:
            with no_space_as(FULL_DISK_LABEL, self.root, _bytes_under(source_dir)):
                pack_directory(source_dir, packed)
            return self.add_file(packed, expected_sha256, move=True)
        finally:
            packed.unlink(missing_ok=True)

    def verify_blob(self, sha256):
        """True when the blob's bytes hash to its name. A stamp (size + mtime) spares rehashing untouched blobs."""
        path = self.blob_path(sha256)
        if not path.is_file():
            return False
        if self._stamp_matches(sha256):
            return True
        intact = sha256_of_file(path) == sha256
        if intact:
            self._write_stamp(sha256)
        return intact

    def rehash_blob(self, sha256):
        """Verify by reading every byte, ignoring the stamp."""
        self._stamp_path(sha256).unlink(missing_ok=True)
        return self.verify_blob(sha256)

    def quarantine(self, sha256):
        """Move a corrupt blob aside (never delete evidence) so the next fetch starts clean."""
        with self.lock(sha256):
            path = self.blob_path(sha256)
            if path.exists():
                os.replace(path, self.root / "quarantine" / f"{sha256}.{int(time.time())}")
            self._stamp_path(sha256).unlink(missing_ok=True)
            shutil.rmtree(self.root / "unpacked" / sha256, ignore_errors=True)

    def _stamp(self, sha256):
        status = self.blob_path(sha256).stat()
        return f"{status.st_size} {status.st_mtime_ns}"

    def _write_stamp(self, sha256):
        """Without room for the stamp the blob is still whole: it is only rehashed on its next verify."""
        try:
            write_bytes_atomically(self._stamp_path(sha256), self._stamp(sha256).encode(), FULL_DISK_LABEL)
        except NoSpaceError:
            pass

    def _stamp_matches(self, sha256):
        try:
            return self._stamp_path(sha256).read_text() == self._stamp(sha256)
        except FileNotFoundError:
            return False

    def unpacked(self, sha256):
        """The directory a tar blob unpacks to, unpacked once (into a temporary directory, then renamed)."""
        target = self.root / "unpacked" / sha256
        if target.is_dir():
            return target
        with self.lock(sha256):
            if not target.is_dir():
                temporary = self.root / "unpacked" / f".{sha256}.{os.getpid()}"
                shutil.rmtree(temporary, ignore_errors=True)
                try:
                    with no_space_as(FULL_DISK_LABEL, self.root, self.blob_path(sha256).stat().st_size):
                        with tarfile.open(self.blob_path(sha256)) as archive:
                            archive.extractall(temporary, filter="data")
                except BaseException:
                    shutil.rmtree(temporary, ignore_errors=True)
                    raise
                os.replace(temporary, target)
        return target

    # ------------------------------------------------------------------ models (named references to blobs)

    def set_ref(self, model_name, sha256):
        write_bytes_atomically(self._ref_path(model_name), sha256.encode(), FULL_DISK_LABEL)

    def ref(self, model_name):
        try:
            sha256 = self._ref_path(model_name).read_text().strip()
        except FileNotFoundError:
            return None
        return sha256 if self.has_blob(sha256) else None

    def touch(self, model_name):
        self._ref_path(model_name).touch()

    def cached_models(self):
        models = []
        for ref in (self.root / "refs").iterdir():
            if ref.name.startswith("."):
                continue
            sha256 = self.ref(ref.name)
            if sha256:
                models.append(CachedModel(ref.name, sha256, self.blob_path(sha256).stat().st_size, ref.stat().st_mtime))
        return models

    def total_bytes(self):
        return sum(path.stat().st_size for path in (self.root / "blobs").iterdir() if not path.name.startswith("."))

    def remove_model(self, model_name):
        """Forget the model; its blob goes too unless another model refers to the same bytes."""
        with self.lock("refs"):
            sha256 = self.ref(model_name)
            self._ref_path(model_name).unlink(missing_ok=True)
            if sha256:
                self.discard_if_unreferenced(sha256)
        return sha256

    def discard_if_unreferenced(self, sha256):
        if any(model.sha256 == sha256 for model in self.cached_models()):
            return
        with self.lock(sha256):
            self.blob_path(sha256).unlink(missing_ok=True)
            self._stamp_path(sha256).unlink(missing_ok=True)
            shutil.rmtree(self.root / "unpacked" / sha256, ignore_errors=True)

    def evict_least_recently_used(self, max_bytes, pinned_names=()):
        """Remove unpinned models, least recently used first, until the blobs fit in max_bytes."""
        evicted = []
        candidates = sorted(
            (model for model in self.cached_models() if model.name not in set(pinned_names)),
            key=lambda model: model.last_used,
        )
        for model in candidates:
            if self.total_bytes() <= max_bytes:
                break
            self.remove_model(model.name)
            evicted.append(model.name)
        return evicted
