"""Unknown names and missing files get one clear line, and the cache is left as it was."""
import pytest
from django.core.management import CommandError, call_command

from inference.selectors import cached_model_names


@pytest.mark.django_db
def test_pull_of_an_unknown_model_names_the_catalog(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    with pytest.raises(CommandError, match=r"'no-such-model' is not in the model catalog \(known: "):
        call_command("models", "pull", "no-such-model")


@pytest.mark.django_db
def test_import_of_a_missing_path_says_so_and_caches_nothing(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    with pytest.raises(CommandError, match="no such file or folder"):
        call_command("models", "import", str(tmp_path / "missing.gguf"), "--name", "missing")
    assert cached_model_names() == set()


@pytest.mark.django_db
def test_import_of_other_bytes_under_a_catalog_name_is_refused(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    impostor = tmp_path / "impostor.gguf"
    impostor.write_bytes(b"not smollm2")
    with pytest.raises(CommandError, match="is not smollm2-135m-instruct's"):
        call_command("models", "import", str(impostor), "--name", "smollm2-135m-instruct")
    assert cached_model_names() == set()
    assert list((tmp_path / "cache" / "blobs").iterdir()) == []
