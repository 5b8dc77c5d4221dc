"""A citation's link decides its embedded player and where it starts: YouTube's embed at the link's t=, the
browser's <audio>/<video> for a direct media file at its #t=, and no player for a page that cannot be embedded."""
from assistant.templatetags.players import player


def test_a_youtube_watch_link_embeds_at_its_second():
    assert player("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s") == {
        "kind": "youtube", "second": 42, "src": "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?start=42&autoplay=1&rel=0",
    }


def test_short_youtube_links_and_shorts_embed_too():
    assert player("https://youtu.be/dQw4w9WgXcQ?t=7s")["src"].startswith("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?start=7&")
    assert player("https://www.youtube.com/shorts/abcDEF12345")["second"] == 0


def test_a_direct_audio_or_video_file_plays_in_the_browser_from_its_fragment():
    assert player("http://127.0.0.1:8765/talk-update.mp3#t=31") == {
        "kind": "audio", "second": 31, "src": "http://127.0.0.1:8765/talk-update.mp3#t=31",
    }
    assert player("https://cdn.example/all-hands.MP4?token=abc#t=12.6,20") == {
        "kind": "video", "second": 12, "src": "https://cdn.example/all-hands.MP4?token=abc#t=12",
    }


def test_pages_that_cannot_be_embedded_have_no_player():
    assert player("https://vimeo.com/123456#t=30") is None
    assert player("https://podcasts.example/episode-12") is None
    assert player("https://www.youtube.com/playlist?list=PL123") is None
