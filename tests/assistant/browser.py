"""What the browser tests share: Debian's chromium driven by Playwright, and where screenshots go."""
import functools
import io
import os
import re
import threading

from tests.conftest import PROJECT_DIR
from tests.ingest.media_site import MediaServer, MediaSite, QuietHandler

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sideways_overflow(page):
    """How many pixels the page is wider than the window (0: nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def played_second(page, scope):
    """The second the embedded <audio>/<video> under `scope` stands at, once it has loaded."""
    media = page.locator(f"{scope} .player audio, {scope} .player video")
    media.wait_for(state="attached")
    page.wait_for_function(
        "(element) => element.readyState >= 1", arg=media.element_handle(), timeout=30_000
    )
    return media.evaluate("(element) => element.currentTime")


class RangeRequestHandler(QuietHandler):
    """Answers `Range: bytes=start-[end]` with 206 and that part, as media servers and CDNs do: a browser seeks
    (to a media fragment's #t= too) only in media it can fetch by ranges."""

    def send_head(self):
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if not ranged or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start, end = int(ranged[1]), min(int(ranged[2] or size - 1), size - 1)
        if start >= size:
            self.send_error(416)
            return None
        body = open(path, "rb")
        body.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return io.BufferedReader(LimitedReader(body, end - start + 1))


class LimitedReader(io.RawIOBase):
    """The first `length` bytes of a file, for copyfile() to send as a range."""

    def __init__(self, file, length):
        self.file, self.left = file, length

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.file.read(min(len(buffer), self.left))
        self.left -= len(data)
        buffer[:len(data)] = data
        return len(data)

    def close(self):
        self.file.close()
        super().close()


class RangeMediaSite(MediaSite):
    """The tests' media site (a feed of spoken talks) serving byte ranges, so the embedded player can seek."""

    def start(self):
        handler = functools.partial(RangeRequestHandler, directory=str(self.root), requests=self.requests)
        self.server = MediaServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self
