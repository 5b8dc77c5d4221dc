"""Over its size limit, the cache drops the models used longest ago, but never a pinned one."""
import time

import pytest
from django.core.management import call_command

from inference.models import ModelEntry
from inference.selectors import cached_model_names
from inference.services import do_fetch_model
from tests.inference.tiny_gguf import write_tiny_gguf


@pytest.mark.django_db
def test_the_least_recently_used_unpinned_model_goes_when_the_cache_is_full(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    for seed, name in enumerate(("pinned-oldest", "used-again", "old", "newest")):
        weights = write_tiny_gguf(tmp_path / f"{name}.gguf", seed=seed)  # equal sizes, different bytes
        call_command("models", "import", str(weights), "--name", name)
        time.sleep(0.02)  # distinct last-use times
    ModelEntry.objects.filter(name="pinned-oldest").update(pinned=True)
    do_fetch_model("used-again")
    settings.MODEL_CACHE_MAX_BYTES = 3 * weights.stat().st_size

    do_fetch_model("newest")

    assert cached_model_names() == {"pinned-oldest", "used-again", "newest"}
