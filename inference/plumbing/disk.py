"""Writes a full disk cannot leave half-done, and one line when it is full.

A file is written beside its final name, flushed to the disk (fsync), then renamed over it: a reader, or a
process started after a crash, sees the previous file or the new one, never part of one. A write that
finds no space raises NoSpaceError naming what was written, where, and how much it still needed.
"""
import errno
import math
import os
from contextlib import contextmanager
from pathlib import Path

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
MB = 1024 * 1024


class NoSpaceError(OSError):
    """A write refused for lack of space; str() is the one line to show, e.g.
    "model cache: no space left on /srv/models (needs 120 MB)"."""

    def __init__(self, what, path, needed_bytes=None):
        needs = f" (needs {max(1, math.ceil(needed_bytes / MB))} MB)" if needed_bytes else ""
        message = f"{what}: no space left on {path}{needs}"
        super().__init__(errno.ENOSPC, message)
        self.message = message

    def __str__(self):
        return self.message


def is_no_space(error):
    return isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS


@contextmanager
def no_space_as(what, path, needed_bytes=None):
    """Turn the OS's ENOSPC inside the block into a NoSpaceError that says what needed the space."""
    try:
        yield
    except NoSpaceError:
        raise
    except OSError as error:
        if not is_no_space(error):
            raise
        raise NoSpaceError(what, path, needed_bytes) from None


def fsync_path(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_durably(temporary, path):
    """Rename a written file over `path` once its bytes are on the disk, then make the rename itself durable."""
    fsync_path(temporary)
    os.replace(temporary, path)
    fsync_path(Path(path).parent)


def write_atomically(path, write, what, needed_bytes=None):
    """Call write(binary file) on a temporary file beside `path`, then put it in place durably. Nothing is
    left behind when the write fails; a full disk raises NoSpaceError labelled `what`."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with no_space_as(what, path.parent, needed_bytes):
            with open(temporary, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            fsync_path(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes_atomically(path, data, what):
    write_atomically(path, lambda handle: handle.write(data), what, needed_bytes=len(data))
