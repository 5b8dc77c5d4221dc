"""Text to normalized vectors with sentence-transformers. Django-free."""
import functools

import numpy as np


@functools.cache
def load_encoder(model_dir):
    # Imported here: sentence-transformers takes seconds to import, which every web request process and
    # management command would otherwise pay at startup through the admin and the services.
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_dir, device="cpu")


def embed(model_dir, texts, batch_size=32):
    """float32 unit vectors, one row per text: inner product is then cosine similarity."""
    vectors = load_encoder(model_dir).encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)
