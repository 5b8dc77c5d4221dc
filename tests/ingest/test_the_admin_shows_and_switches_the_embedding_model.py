"""The admin shows the cluster's embedding model (the environment's until changed), offers the catalog's
embedding models, starts a switch with a progress bar, and cancels it by choosing the current model again."""
import pytest
from django.urls import reverse

from ingest import reembedding
from ingest.models import EmbeddingSetting
from tests.ingest.embedding_switch import NEW_MODEL, OLD_MODEL, install_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalog():
    install_catalog()


def change_url():
    return reverse("admin:ingest_embeddingsetting_change", args=[1])


def test_the_setting_starts_as_the_environment_says_and_offers_embedding_models_only(admin_client, settings):
    assert settings.INGEST_EMBEDDING_MODEL == OLD_MODEL
    listing = admin_client.get(reverse("admin:ingest_embeddingsetting_changelist")).content.decode()
    assert OLD_MODEL in listing
    form = admin_client.get(change_url()).content.decode()
    assert f'<option value="{OLD_MODEL}" selected>' in form and f'<option value="{NEW_MODEL}">' in form
    assert "whisper-base" not in form and "smollm2" not in form


def test_choosing_another_model_starts_a_switch_shown_with_its_progress(admin_client):
    admin_client.get(reverse("admin:ingest_embeddingsetting_changelist"))
    response = admin_client.post(change_url(), {"embedding_model": NEW_MODEL}, follow=True)
    assert response.status_code == 200
    setting = EmbeddingSetting.objects.get(pk=1)
    assert (setting.active_model, setting.target_model) == (OLD_MODEL, NEW_MODEL)

    EmbeddingSetting.objects.filter(pk=1).update(reembedded_count=120, percent=40.0)
    listing = admin_client.get(reverse("admin:ingest_embeddingsetting_changelist")).content.decode()
    assert '<progress value="40" max="100"' in listing
    assert f"re-embedding with {NEW_MODEL}: 120 chunks, 40%" in listing


def test_choosing_the_current_model_during_a_switch_cancels_it(admin_client):
    admin_client.get(reverse("admin:ingest_embeddingsetting_changelist"))
    admin_client.post(change_url(), {"embedding_model": NEW_MODEL})
    admin_client.post(change_url(), {"embedding_model": OLD_MODEL})
    setting = EmbeddingSetting.objects.get(pk=1)
    assert (setting.active_model, setting.target_model, setting.active_generation) == (OLD_MODEL, "", 0)
    assert not reembedding.do_reembed_chunks()


def test_a_model_outside_the_catalog_is_refused_in_one_line(admin_client):
    admin_client.get(reverse("admin:ingest_embeddingsetting_changelist"))
    response = admin_client.post(change_url(), {"embedding_model": "whisper-base"})
    assert "Select a valid choice." in response.content.decode()
    with pytest.raises(reembedding.UnknownEmbeddingModel, match="'whisper-base' is not an embedding model of the catalog"):
        reembedding.do_choose_embedding_model("whisper-base")
    assert not EmbeddingSetting.objects.get(pk=1).is_switching
