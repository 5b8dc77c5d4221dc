"""`models import` parses a new GGUF before taking it: an empty or truncated file is refused with one line and
a non-zero exit, and neither the catalog nor the cache gains anything; a whole model is still imported."""
import shutil
import subprocess

import pytest
from django.core.management import CommandError, call_command

from inference.models import ModelEntry
from inference.selectors import cached_model_names
from tests.conftest import PROJECT_DIR, child_env, manage_py


def assert_nothing_taken(cache_dir, name):
    assert not ModelEntry.objects.filter(name=name).exists()
    assert not (cache_dir / "blobs").exists() or list((cache_dir / "blobs").iterdir()) == []


def test_an_empty_gguf_is_refused_with_one_line_and_a_failing_exit_code(transactional_db, tmp_path):
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    cache_dir = tmp_path / "cache"
    result = subprocess.run(
        manage_py("models", "import", str(empty), "--name", "empty-llm"), env=child_env(MODEL_CACHE_DIR=cache_dir),
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"CommandError: {empty}: not a readable GGUF file"), result.stderr
    assert_nothing_taken(cache_dir, "empty-llm")


@pytest.mark.django_db
def test_a_truncated_gguf_is_refused_and_nothing_is_catalogued(settings, tmp_path, smollm2_gguf):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    truncated = tmp_path / "truncated.gguf"
    with open(smollm2_gguf, "rb") as source:
        truncated.write_bytes(source.read(smollm2_gguf.stat().st_size // 2))
    with pytest.raises(CommandError, match="not a readable GGUF file|truncated GGUF file") as raised:
        call_command("models", "import", str(truncated), "--name", "half-a-model")
    assert "\n" not in str(raised.value)
    assert_nothing_taken(tmp_path / "cache", "half-a-model")


@pytest.mark.django_db
def test_a_whole_gguf_is_imported_as_an_llm(settings, tmp_path, smollm2_gguf):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    copy = tmp_path / "my-smollm2.gguf"
    shutil.copyfile(smollm2_gguf, copy)
    call_command("models", "import", str(copy), "--name", "my-smollm2")
    assert ModelEntry.objects.get(name="my-smollm2").kind == "llm"
    assert "my-smollm2" in cached_model_names()
