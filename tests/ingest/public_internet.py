"""A corner of the public internet for SSRF tests: a network namespace whose loopback also holds a global
address, so a server there is "public" to Kotatsu's checks while 127.0.0.1 stays private. A test runs a
Python script inside it and gets the JSON object the script printed last; the namespace is removed after."""
import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import PROJECT_DIR
from tests.inference.cluster_lab import namespaces_work

PUBLIC_ADDRESS = "93.184.216.34"  # a global address (example.com's once), only inside the namespace

# Serves `root` on every address of the namespace; /to-loopback/NAME redirects to NAME on 127.0.0.1.
SITE = """
import functools, http.server, threading

class Site(http.server.SimpleHTTPRequestHandler):
    requested = []

    def do_GET(self):
        Site.requested.append(self.path)
        if self.path.startswith("/to-loopback/"):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/{self.path.split('/')[-1]}")
            self.end_headers()
        else:
            super().do_GET()

    def log_message(self, format, *args):
        pass

def serve(root):
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), functools.partial(Site, directory=root))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_port
"""

requires_namespaces = pytest.mark.skipif(not namespaces_work(), reason="needs `ip netns` (root)")


def run_on_the_public_internet(script, env=None):
    namespace = f"kt-public-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", namespace], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True, capture_output=True)
        subprocess.run(["ip", "-n", namespace, "addr", "add", f"{PUBLIC_ADDRESS}/32", "dev", "lo"], check=True, capture_output=True)
        done = subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", SITE + script],
            env={**os.environ, **(env or {})}, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300,
        )
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
