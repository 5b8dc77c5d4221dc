"""Where a model's GGUF file is: a path as given, or a catalog model fetched through the model cache.

`resolve_model_path` is the one entry point.
"""

from __future__ import annotations

import os
from pathlib import Path

from inference.plumbing.config import model_cache_dir

# The LLM commands and benches use when none is named, and the one that answers when no catalog LLM is known to run
# (inference.selectors.serving_model picks the LLM of each use).
DEFAULT_MODEL = "smollm2-135m-instruct"


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


def llm_profile(model) -> dict:
    """What choosing an LLM needs to know without its file (kept in the catalog, inference.models.ModelEntry.profile):
    its run-time bytes at the context an answer runs with (the planner's ModelMemory: per layer weights + KV cache,
    the embedding, the last stage's extra, the working buffers a stage measures) and the KV cache's share of each
    layer, so that the weight bytes a decode step reads are known. `model`: a parsed GGUF (read_gguf)."""
    from inference.cluster.coordinator import model_memory
    from inference.core.engine import DEFAULT_CONTEXT_LENGTH
    from inference.core.gguf_loader import FLOAT32_BYTES

    config = model.config
    context_length = min(DEFAULT_CONTEXT_LENGTH, config.context_length)
    memory = model_memory(model, context_length)
    return {
        "context_length": context_length,
        "layer_bytes": list(memory.layer_bytes),
        "kv_bytes_per_layer": 2 * config.n_kv_heads * config.head_dim * context_length * FLOAT32_BYTES,
        "embedding_bytes": memory.embedding_bytes,
        "head_bytes": memory.head_bytes,
        "working_bytes": memory.working_bytes,
    }
