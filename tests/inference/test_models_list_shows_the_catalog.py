"""`models list --json` is the catalog with this node's cache state, for scripts."""
import json

import pytest
from django.core.management import call_command

from inference.catalog import install_built_in_models
from inference.models import ModelEntry, ModelSource
from tests.inference.tiny_gguf import write_tiny_gguf


@pytest.mark.django_db
def test_list_json_names_every_catalog_model_and_whether_it_is_cached_here(settings, tmp_path, capsys):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    install_built_in_models(ModelEntry, ModelSource)  # a flushing (transactional) test may have run before
    weights = write_tiny_gguf(tmp_path / "weights.gguf")
    call_command("models", "import", str(weights), "--name", "local-weights")
    capsys.readouterr()

    call_command("models", "list", "--json")

    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {"smollm2-135m-instruct", "whisper-tiny.en", "whisper-base", "all-minilm-l6-v2"} <= set(rows)
    local = rows["local-weights"]
    assert {key: local[key] for key in ("name", "kind", "size", "cached")} == {
        "name": "local-weights", "kind": "llm", "size": weights.stat().st_size, "cached": True,
    }
    # An LLM also says whether the live nodes (none here: this node) can run it now, and which uses it serves.
    assert local["can_run"] is True and local["decode_tok_s"] > 0 and local["why_not"] == ""
    assert rows["qwen2.5-coder-1.5b-instruct"]["can_run"] is False
    assert "no live node holds it" in rows["qwen2.5-coder-1.5b-instruct"]["why_not"]
    assert rows["whisper-base"]["cached"] is False
    assert set(rows["whisper-base"]) == {"name", "kind", "size", "sha256", "cached"}
