"""Fetch only part of a GGUF from a peer: its header, then the byte ranges of the tensors of some layers.

The result is a file of the original size whose other bytes were never transferred (a sparse file
on most file systems), so offsets stay those of the original and inference.core.gguf_loader reads it as is.
"""
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

    A prefix cut inside the header makes the parse run into the zeros beyond it: it fails, or it places
    the tensor data past the prefix. Either way twice as much is fetched.
    """
    length = min(FIRST_HEADER_GUESS_BYTES, total_size)
    fetched = 0
    while True:
        prefix = fetch_range(url, fetched, length - fetched, headers, session)
        with open(destination, "r+b") as handle:
            handle.seek(fetched)
            handle.write(prefix)
        fetched = length
        model = parsed_header(destination, fetched)
        if model is not None:
            return model, fetched
        if fetched == total_size:
            raise GGUFError(f"{url}: not a readable GGUF file")
        length = min(2 * length, total_size)


def parsed_header(path, available_bytes):
    try:
        model = read_gguf(path)
    except GGUFError:
        return None
    data_start = min((tensor.offset for tensor in model.tensors.values()), default=0)
    return model if data_start <= available_bytes else None


def merge_adjacent(ranges):
    """(offset, length) ranges sorted, with touching ones merged: one request per contiguous run."""
    merged = []
    for offset, length in sorted(ranges):
        if merged and merged[-1][0] + merged[-1][1] == offset:
            merged[-1] = (merged[-1][0], merged[-1][1] + length)
        else:
            merged.append((offset, length))
    return merged
