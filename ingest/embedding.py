"""The one embedding function: text to normalized vectors with the configured sentence-transformers model.

Ingestion (chunks), retrieval (questions), summaries, "worth watching" and the /v1/embeddings API all call
embed_texts, so a question is embedded exactly as the chunks it is compared with.
"""
import functools

import numpy as np
from django.conf import settings

from inference.services import do_fetch_model

BATCH_SIZE = 32


@functools.cache
def model_dir(model_name):
    """Resolved once per process and model: do_fetch_model records the holding in the database, a write that
    every question would otherwise make."""
    return str(do_fetch_model(model_name))


@functools.cache
def load_encoder(directory):
    # Imported here: sentence-transformers takes seconds to import, which every web request process and
    # management command would otherwise pay at startup through the admin and the services.
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(directory, device="cpu")


def encoder():
    """The loaded model of INGEST_EMBEDDING_MODEL, for its tokenizer and limits."""
    return load_encoder(model_dir(settings.INGEST_EMBEDDING_MODEL))


def embed_texts(texts):
    """float32 unit vectors, one row per text: inner product is then cosine similarity."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, 0), np.float32)
    vectors = encoder().encode(
        texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)
