import datetime as dt

import pytest

from ingest.replica import forget_replica
from tests.ingest.media_site import MediaSite


@pytest.fixture(autouse=True)
def own_index_dir(settings, tmp_path):
    """Each test starts with an empty FAISS replica of its own (the database is new for each test too)."""
    settings.INDEX_DIR = tmp_path / "index"
    settings.AUDIO_TMP_DIR = tmp_path / "audio"
    forget_replica()
    yield
    forget_replica()


@pytest.fixture
def allow_private_urls(settings, monkeypatch):
    """The media site lives on 127.0.0.1, which users may not submit; worker processes get the same setting."""
    settings.ALLOW_PRIVATE_URLS = True
    monkeypatch.setenv("KOTATSU_ALLOW_PRIVATE_URLS", "1")


@pytest.fixture
def tiny_whisper(settings, monkeypatch):
    settings.INGEST_WHISPER_MODEL = "whisper-tiny.en"
    monkeypatch.setenv("INGEST_WHISPER_MODEL", "whisper-tiny.en")


@pytest.fixture
def media_site(tmp_path, allow_private_urls):
    root = tmp_path / "site"
    root.mkdir()
    site = MediaSite(root).start()
    yield site
    site.stop()


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", password="not-used-here")


def hours_ago(hours):
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours)
