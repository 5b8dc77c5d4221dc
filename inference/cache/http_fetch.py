"""HTTP downloads that survive interruptions: resume with Range, retry transient failures with backoff.

An origin that cannot be reached at all (no DNS, connection refused, 4xx) fails at once, so a node
without internet falls through to its next source in about a second instead of retrying.
"""
import time

import requests

from inference.plumbing.disk import no_space_as

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 60
CHUNK_BYTES = 1024 * 1024
RETRIES = 4
FIRST_BACKOFF_S = 0.5


class FetchError(Exception):
    """A download that failed for good; the message names the URL and the reason."""


def download(url, partial_path, headers=None, progress=None, session=None):
    """Download `url` into `partial_path`, continuing from what a previous attempt left there.

    `progress(done_bytes, total_bytes)` is called as bytes arrive. Returns the number of bytes this
    call transferred (not counting what was already on disk). A full disk raises NoSpaceError at once
    (no retry would find room) and keeps what was written, so the download resumes once space is freed.
    """
    session = session or requests.Session()
    transferred = 0
    for attempt in range(RETRIES + 1):
        try:
            transferred += _download_once(url, partial_path, headers or {}, progress, session)
            return transferred
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            if _is_unreachable(error):
                raise FetchError(f"{url}: unreachable ({_reason(error)})") from None
            last_error = error
        except _TransientStatus as error:
            last_error = error
        if attempt < RETRIES:
            time.sleep(FIRST_BACKOFF_S * 2**attempt)
    raise FetchError(f"{url}: gave up after {RETRIES + 1} attempts ({_reason(last_error)})")


class _TransientStatus(Exception):
    pass


def _download_once(url, partial_path, headers, progress, session):
    offset = partial_path.stat().st_size if partial_path.exists() else 0
    request_headers = {**headers, **({"Range": f"bytes={offset}-"} if offset else {})}
    with session.get(url, headers=request_headers, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as response:
        if response.status_code == 416 and offset:
            # The partial file already holds every byte; verification decides whether they are right.
            return 0
        if response.status_code >= 500 or response.status_code == 429:
            raise _TransientStatus(f"HTTP {response.status_code}")
        if response.status_code not in (200, 206):
            raise FetchError(f"{url}: HTTP {response.status_code}")
        if response.status_code == 200:
            offset = 0  # the server ignored Range: start over
        total = _total_size(response, offset)
        transferred = 0
        missing = None if total is None else total - offset
        with no_space_as("model cache", partial_path.parent, missing), open(partial_path, "r+b" if offset else "wb") as handle:
            handle.seek(offset)
            handle.truncate()
            for chunk in response.iter_content(CHUNK_BYTES):
                handle.write(chunk)
                transferred += len(chunk)
                if progress:
                    progress(offset + transferred, total)
        if total is not None and offset + transferred < total:
            raise requests.ConnectionError(f"connection closed after {offset + transferred} of {total} bytes")
        return transferred


def fetch_range(url, start, length, headers=None, session=None):
    """The bytes [start, start + length) of `url`, from a server that honours Range."""
    session = session or requests.Session()
    request_headers = {**(headers or {}), "Range": f"bytes={start}-{start + length - 1}"}
    try:
        response = session.get(url, headers=request_headers, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
    except (requests.ConnectionError, requests.Timeout) as error:
        raise FetchError(f"{url}: {_reason(error)}") from None
    if response.status_code != 206 or len(response.content) != length:
        raise FetchError(f"{url}: expected {length} bytes at {start}, got HTTP {response.status_code}")
    return response.content


def _total_size(response, offset):
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _is_unreachable(error):
    return isinstance(error, requests.ConnectTimeout) or "NameResolution" in repr(error) or "refused" in repr(error)


def _reason(error):
    text = str(error)
    for marker in ("Failed to resolve", "Connection refused", "timed out"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200] if text else type(error).__name__
