"""A local stand-in for a model's internet origin: serves bytes with Range, counts every request,
and can be slowed down so that a test has time to interrupt a download."""
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Origin:
    def __init__(self, payload, bytes_per_second=None):
        self.payload = payload
        self.bytes_per_second = bytes_per_second
        self.requests = []  # (method, path, Range header or None)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.bin"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def get_requests(self):
        return [request for request in self.requests if request[0] == "GET"]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                range_header = self.headers.get("Range")
                origin.requests.append(("GET", self.path, range_header))
                start = int(re.match(r"bytes=(\d+)-", range_header).group(1)) if range_header else 0
                body = origin.payload[start:]
                self.send_response(206 if range_header else 200)
                self.send_header("Content-Length", str(len(body)))
                if range_header:
                    self.send_header("Content-Range", f"bytes {start}-{len(origin.payload) - 1}/{len(origin.payload)}")
                self.end_headers()
                chunk = 64 * 1024
                for position in range(0, len(body), chunk):
                    try:
                        self.wfile.write(body[position:position + chunk])
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    if origin.bytes_per_second:
                        time.sleep(chunk / origin.bytes_per_second)

        return Handler
