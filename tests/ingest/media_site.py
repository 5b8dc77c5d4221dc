"""A local media site for ingestion tests: espeak-ng speech as MP3 files and an RSS feed listing them,
served over HTTP from a thread. It plays a channel for yt-dlp's generic extractor."""
import datetime as dt
import email.utils
import functools
import http.server
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape


@dataclass
class Episode:
    guid: str
    title: str
    sentences: list
    published_at: dt.datetime
    duration_s: int | None = None  # stated in the feed; the real length when None

    @property
    def words(self):
        return " ".join(self.sentences)


def speak(text, mp3_path, words_per_minute=140):
    wav_path = mp3_path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-s", str(words_per_minute), "-w", str(wav_path), text], check=True)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav_path), "-codec:a", "libmp3lame", "-b:a", "48k", str(mp3_path)],
        check=True,
    )
    wav_path.unlink()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, requests, **kwargs):
        self.requests = requests
        super().__init__(*args, **kwargs)

    def log_message(self, format, *args):
        self.requests.append(self.path)


class MediaServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # yt-dlp sniffs a media file's first bytes and hangs up: a broken pipe here is normal.
        pass


@dataclass
class MediaSite:
    root: Path
    server: MediaServer = None
    requests: list = field(default_factory=list)
    episodes: list = field(default_factory=list)

    def start(self):
        handler = functools.partial(QuietHandler, directory=str(self.root), requests=self.requests)
        self.server = MediaServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def feed_url(self):
        return f"{self.base_url}/feed.xml"

    def url(self, name):
        return f"{self.base_url}/{name}"

    def add_episode(self, episode, media_name=None):
        """Speak the episode into <guid>.mp3 (unless media_name points elsewhere) and list it in the feed."""
        if media_name is None:
            media_name = f"{episode.guid}.mp3"
            speak(episode.words, self.root / media_name)
        self.episodes.insert(0, (episode, media_name))
        self.write_feed()

    def write_feed(self):
        items = []
        for episode, media_name in self.episodes:
            duration = f"<itunes:duration>{episode.duration_s}</itunes:duration>" if episode.duration_s else ""
            items.append(
                f"<item><title>{escape(episode.title)}</title><guid>{escape(episode.guid)}</guid>"
                f"<pubDate>{email.utils.format_datetime(episode.published_at)}</pubDate>"
                f'<enclosure url="{self.url(media_name)}" type="audio/mpeg" length="1"/>{duration}</item>'
            )
        (self.root / "feed.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel>'
            f"<title>Kotatsu test talks</title><link>{self.base_url}/</link><description>talks</description>"
            f"{''.join(items)}</channel></rss>"
        )

    def media_requests(self, name):
        return [path for path in self.requests if path.startswith(f"/{name}")]
