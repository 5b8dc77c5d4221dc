"""Fetch only part of a GGUF from a peer: its header, then the byte ranges of the tensors of some layers.

The result is a file of the original size whose other bytes were never transferred (a sparse file
on most file systems), so offsets stay those of the original and inference.core.gguf_loader reads it as is.
"""
import struct

import requests

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
