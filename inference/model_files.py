"""Where a model's GGUF file is: a path as given, or a catalog model fetched through the model cache.

`resolve_model_path` is the one entry point.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m-instruct"


def resolve_model_path(name_or_path: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A .gguf path as given, or the GGUF of a catalog model (inference.models.ModelEntry) from the cache.

    The cache is always settings.MODEL_CACHE_DIR; `cache_dir` is accepted for existing callers only.
    """
    if name_or_path.endswith(".gguf") or os.path.sep in name_or_path:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such GGUF file")
        return path
    from inference.services import ModelCacheError, do_fetch_model  # Django parts, loaded only for names

    try:
        return do_fetch_model(name_or_path.lower())
    except ModelCacheError as error:
        raise ValueError(f"{error}; or give a .gguf path") from None
