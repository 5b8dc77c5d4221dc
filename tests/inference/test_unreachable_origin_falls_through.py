"""Without internet, a model's first source (its real origin) fails as unreachable, logged in one line,
and the next source delivers. (How long the fall-through takes is a bench matter, not a test's.)"""
import logging

import pytest

from inference.cache.store import sha256_of_file
from inference.models import ModelEntry
from inference.services import do_fetch_model
from tests.inference.tiny_gguf import write_tiny_gguf


@pytest.mark.django_db
def test_an_unreachable_origin_falls_through_to_the_next_source_with_one_log_line(settings, tmp_path, caplog):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    local_copy = write_tiny_gguf(tmp_path / "weights.gguf")  # a real GGUF: a pulled LLM is profiled once
    digest = sha256_of_file(local_copy)
    model = ModelEntry.objects.create(
        name="offline-model", kind="llm", format="gguf", size=local_copy.stat().st_size, sha256=digest
    )
    model.sources.create(position=0, kind="url", location="https://origin.invalid/weights.gguf")
    model.sources.create(position=1, kind="path", location=str(local_copy))

    with caplog.at_level(logging.INFO, logger="inference"):
        path = do_fetch_model("offline-model")

    assert sha256_of_file(path) == digest
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "origin.invalid" in warnings[0] and "source #0" in warnings[0]
    assert "unreachable" in warnings[0]
