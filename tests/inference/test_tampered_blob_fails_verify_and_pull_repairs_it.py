"""A blob whose bytes changed on disk is caught by `models verify`, and `models pull` fetches it again."""
import pytest
from django.core.management import CommandError, call_command

from inference.cache.store import sha256_of_file
from tests.inference.tiny_gguf import write_tiny_gguf


@pytest.fixture
def imported_model(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    original = write_tiny_gguf(tmp_path / "weights.gguf")
    call_command("models", "import", str(original), "--name", "tiny-weights")
    digest = sha256_of_file(original)
    return settings.MODEL_CACHE_DIR / "blobs" / digest, digest


def tamper(blob):
    with open(blob, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\xff" * 16)


@pytest.mark.django_db
def test_verify_fails_on_a_tampered_blob_and_pull_repairs_it(imported_model):
    blob, digest = imported_model
    tamper(blob)

    with pytest.raises(CommandError, match="do not match"):
        call_command("models", "verify")
    call_command("models", "pull", "tiny-weights")

    assert sha256_of_file(blob) == digest
    call_command("models", "verify", "tiny-weights")


@pytest.mark.django_db
def test_pull_alone_notices_a_tampered_blob_and_fetches_it_again(imported_model):
    blob, digest = imported_model
    tamper(blob)

    call_command("models", "pull", "tiny-weights")

    assert sha256_of_file(blob) == digest
    assert len(list((blob.parent.parent / "quarantine").iterdir())) == 1
