"""Serve this node's blobs to peers over HTTP: GET/HEAD /blobs/<sha256>, with Range.

Only peers presenting the cluster token (X-Cluster-Token) get bytes (403 otherwise); a path that is not
exactly /blobs/<64 hex digits> is refused with 400 before it gets near the file system.
"""
import hmac
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from inference.cache.store import is_sha256

TOKEN_HEADER = "X-Cluster-Token"
COPY_CHUNK_BYTES = 1024 * 1024
RANGE_PATTERN = re.compile(r"^bytes=(\d*)-(\d*)$")


class PeerServer:
    """A threaded HTTP server over a BlobStore; counts the bytes it serves (for benchmarks and tests)."""

    def __init__(self, store, token, host="0.0.0.0", port=0):
        self.store = store
        self.token = token
        self.bytes_sent = 0
        self._count_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="model-cache-peer-server", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def count_sent(self, n_bytes):
        with self._count_lock:
            self.bytes_sent += n_bytes

    def _handler_class(self):
        server = self

        class Handler(BlobRequestHandler):
            peer_server = server

        return Handler


class BlobRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a shard fetch asks for many ranges in a row
    peer_server = None

    def log_message(self, format, *args):
        pass  # one line per range request would drown the worker's log

    def do_HEAD(self):
        self.serve(send_body=False)

    def do_GET(self):
        self.serve(send_body=True)

    def serve(self, send_body):
        if not hmac.compare_digest(self.headers.get(TOKEN_HEADER, "").encode(), self.peer_server.token.encode()):
            return self.refuse(403, "a valid cluster token is required")
        prefix, _, digest = self.path.partition("/blobs/")
        if prefix or not is_sha256(digest):
            return self.refuse(400, "expected /blobs/<sha256>")
        path = self.peer_server.store.blob_path(digest)
        if not self.peer_server.store.has_blob(digest):
            return self.refuse(404, "not in this node's cache")
        size = path.stat().st_size
        byte_range = parse_range(self.headers.get("Range"), size)
        if byte_range == "unsatisfiable":
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = byte_range or (0, size - 1)
        length = end - start + 1 if size else 0
        self.send_response(206 if byte_range else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if byte_range:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if send_body:
            with open(path, "rb") as handle:
                handle.seek(start)
                self.peer_server.count_sent(copy_bytes(handle, self.wfile, length))

    def refuse(self, status, reason):
        body = f"{reason}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def parse_range(header, size):
    """(first, last) byte of a single-range header, None for none/ignored, "unsatisfiable" past the end."""
    match = RANGE_PATTERN.match(header or "")
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


def copy_bytes(source, destination, length):
    sent = 0
    while sent < length:
        chunk = source.read(min(COPY_CHUNK_BYTES, length - sent))
        if not chunk:
            break
        destination.write(chunk)
        sent += len(chunk)
    return sent
