"""The one embedding function: text to normalized vectors with a sentence-transformers model of the catalog.

Ingestion (chunks), retrieval (questions), summaries, "worth watching" and the /v1/embeddings API all call
embed_texts, by default with the cluster's active embedding model (the EmbeddingSetting row, whose initial value
is INGEST_EMBEDDING_MODEL), so a question is embedded exactly as the chunks it is compared with. Re-embedding
for a switch of model names the target model. Models trained with a query and a document prompt (EmbeddingGemma:
"task: search result | query: ", "title: none | text: ") get them; others embed both alike.
"""
import functools
import threading

import numpy as np

from inference.services import do_fetch_model
from ingest.models import EmbeddingSetting

BATCH_SIZE = 32
LOADING = threading.Lock()


def active_embedding_model():
    """The catalog name of the model the knowledge base's vectors and questions are embedded with."""
    return EmbeddingSetting.current().active_model


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


def encoder(model_name=None):
    """The loaded model (the active one by default), for its tokenizer and limits."""
    directory = model_dir(model_name or active_embedding_model())
    # functools.cache does not hold a second caller while the first loads: the web server's warm-up and the
    # first question would each load the model (seen twice in the web log, 1.2 GB each for EmbeddingGemma).
    with LOADING:
        return load_encoder(directory)


def embed_texts(texts, model_name=None, as_query=False):
    """float32 unit vectors, one row per text, by `model_name` (the active model by default): inner product is
    then cosine similarity. `as_query`: the texts are questions searched against stored (document) texts."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, 0), np.float32)
    model = encoder(model_name)
    prompt_name = "query" if as_query else "document"
    vectors = model.encode(
        texts,
        prompt_name=prompt_name if prompt_name in model.prompts else None,
        batch_size=BATCH_SIZE,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )  # [len(texts), dims]
    return np.ascontiguousarray(vectors, dtype=np.float32)


def segment_texts(segments):
    """Transcript segments' texts as their vectors are made of (SegmentVectors)."""
    return [segment["text"].strip() for segment in segments]


@functools.lru_cache(maxsize=64)
def query_vector(question, model_name):
    """The question's vector as a query (read-only [dims]), kept for the questions of the last moments: retrieval,
    then citations or search moments, compare it with stored vectors, and embedding it once is enough."""
    vector = embed_texts([question], model_name, as_query=True)[0]  # [dims]
    vector.setflags(write=False)
    return vector
