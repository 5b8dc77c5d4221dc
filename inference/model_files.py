"""Where a model's GGUF file is: a path as given, or a catalog model fetched through the model cache.

`resolve_model_path` is the one entry point.
"""

from __future__ import annotations

import os
from pathlib import Path

from inference.catalog import DEFAULT_MODEL
from inference.plumbing.config import model_cache_dir


def cached_model_path(name: str = DEFAULT_MODEL) -> Path | None:
    """The blob of a catalog model already in the local model cache, without Django (for benches)."""
    from inference.cache.store import BlobStore

    store = BlobStore(model_cache_dir())
    digest = store.ref(name)
    return store.blob_path(digest) if digest else None


def resolve_model_path(name_or_path: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A .gguf path as given, or the GGUF of a catalog model (inference.models.ModelEntry) from the model
    cache at `cache_dir` (default: settings.MODEL_CACHE_DIR). Names need Django and its database."""
    if name_or_path.endswith(".gguf") or os.path.sep in name_or_path:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such GGUF file")
        return path
    from inference.services import ModelCacheError, do_fetch_model  # Django parts, loaded only for names

    try:
        return do_fetch_model(name_or_path.lower(), cache_dir=cache_dir)
    except ModelCacheError as error:
        raise ValueError(f"{error}; or give a .gguf path") from None

