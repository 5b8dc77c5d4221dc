"""The web interface in Japanese and English: the browser's Accept-Language by default, the language an
employee chooses on the dashboard once chosen (kept in the database, so in every browser), dates localized."""
import datetime as dt
import gettext
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from assistant.middleware import database_unavailable_response
from assistant.models import Conversation
from ingest.models import Job, Source, Subscription, Video

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"
CATALOGUE = Path(settings.BASE_DIR) / "locale" / "ja" / "LC_MESSAGES"


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", password=PASSWORD)


def logged_in(client, user, accept_language):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = accept_language
    client.force_login(user)
    return client


def test_the_login_page_follows_the_browsers_language(client):
    japanese = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5").content.decode()
    english = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert '<html lang="ja">' in japanese and "<h1>ログイン</h1>" in japanese and "ユーザー名" in japanese
    assert '<html lang="en">' in english and "<h1>Log in</h1>" in english


def test_the_dashboard_and_sources_page_speak_japanese_with_localized_dates(client, ada):
    Conversation.objects.create(user=ada, title="バックアップ")
    Conversation.objects.filter(user=ada).update(updated_at=dt.datetime(2026, 11, 3, 14, 5, tzinfo=dt.timezone.utc))
    source = Source.objects.create(url="https://93.184.215.14/feed.xml")
    Subscription.objects.create(user=ada, source=source)
    video = Video.objects.create(extractor="Generic", video_id="1", url="https://93.184.215.14/1.mp3", title="挨拶", language="ja")
    video.sources.add(source)
    Job.objects.create(video=video, stage=Job.CHUNKING, percent=42)
    logged_in(client, ada, "ja")

    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "ようこそ、ada さん" in dashboard and "見る価値のある動画" in dashboard and ">ソース</a>" in dashboard
    assert "2026/11/03 14:05" in dashboard, "a Japanese short date and time"
    sources = client.get(reverse("sources")).content.decode()
    assert "話されている言語: 日本語" in sources and "[日本語]" in sources and "分割中 42%" in sources
    assert "0/1 件を索引済み" in sources

    english = logged_in(client, ada, "en").get(reverse("dashboard")).content.decode()
    assert "Welcome, ada" in english and "11/03/2026 2:05 p.m." in english


def test_messages_after_a_form_are_translated(client, ada):
    logged_in(client, ada, "ja")
    response = client.post(reverse("subscribe"), {"url": "http://192.168.1.10/feed.xml"}, follow=True)
    assert "購読できませんでした: 192.168.1.10 is a private address" in response.content.decode()


def test_the_language_chosen_on_the_dashboard_wins_over_the_browsers_in_every_browser(client, ada, django_user_model):
    logged_in(client, ada, "en")
    assert 'name="language"' in client.get(reverse("dashboard")).content.decode()
    response = client.post(reverse("choose_language"), {"language": "ja", "next": reverse("sources")})
    assert response.status_code == 302 and response["Location"] == reverse("sources")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ja"
    assert "<h1>ソース</h1>" in client.get(reverse("sources")).content.decode()

    another_browser = client.__class__(HTTP_ACCEPT_LANGUAGE="en")
    another_browser.post(reverse("login"), {"username": "ada", "password": PASSWORD})
    assert "ようこそ、ada さん" in another_browser.get(reverse("dashboard")).content.decode()
    assert "Welcome" in logged_in(client.__class__(), django_user_model.objects.create_user("bo"), "en").get("/").content.decode()


def test_an_unknown_language_or_a_foreign_next_page_is_ignored(client, ada):
    logged_in(client, ada, "en")
    response = client.post(reverse("choose_language"), {"language": "xx", "next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard")
    assert "Welcome, ada" in client.get(reverse("dashboard")).content.decode()


def test_every_message_has_a_japanese_translation_and_the_compiled_catalogue_is_committed():
    """The .mo is committed, so no gettext tools are needed to run Kotatsu; it must hold what the .po says."""
    po = (CATALOGUE / "django.po").read_text(encoding="utf-8")
    entries = po.split("\n\n")[1:]  # after the header
    untranslated = [entry for entry in entries if re.search(r'^msgstr(\[0\])? ""$', entry, re.M)]
    assert entries and not untranslated
    with open(CATALOGUE / "django.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for entry in entries:
        msgid, msgstr = po_string(entry, "msgid"), po_string(entry, r"msgstr(?:\[0\])?")
        assert compiled.gettext(msgid) == msgstr, f"django.mo is older than django.po: compilemessages ({msgid!r})"


def po_string(entry, keyword):
    """A .po entry's string after keyword, joined from its continuation lines."""
    lines = re.search(rf'^{keyword} (".*"\n?(?:".*"\n?)*)', entry, re.M).group(1).split("\n")
    return "".join(json.loads(line) for line in lines if line)


def test_the_database_unavailable_page_is_in_the_readers_language_and_the_api_error_in_english(rf):
    with translation.override("ja"):
        page = database_unavailable_response(rf.get("/")).content.decode()
        api_error = json.loads(database_unavailable_response(rf.get("/v1/models")).content)
    assert "<h1>サービスを利用できません</h1>" in page and "データベースに接続できません" in page
    assert api_error["error"]["message"].startswith("The database is unavailable")
