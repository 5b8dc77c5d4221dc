"""A chunk is a stretch of transcript: a question about one sentence of it scores low against the whole, the more
so across languages. A chunk below the embedding model's cut-off is still relevant when one of its transcript
segments clears the cut-off plus SENTENCE_MARGIN (a sentence scores higher than a stretch for any text)."""
import numpy as np
import pytest

from inference.models import ModelEntry
from ingest.embedding import active_embedding_model, query_vector
from ingest.retrieval import SENTENCE_MARGIN, retrieve
from ingest.segment_vectors import video_segment_vectors
from tests.assistant.conftest import ensure_model_catalog
from tests.assistant.knowledge import build_knowledge_base

QUESTION = "Where is the first aid kit?"


def set_cut_off(value):
    active = ModelEntry.objects.get(name=active_embedding_model())
    active.min_relevance = value
    active.save()


@pytest.mark.django_db
def test_a_chunk_below_the_cut_off_is_kept_for_a_sentence_above_it_plus_the_margin():
    ensure_model_catalog()
    kitchen = build_knowledge_base()["kitchen"]
    set_cut_off(-1.0)
    chunk_cosine = max(passage.score for passage in retrieve(QUESTION) if passage.video == kitchen)
    model_name = active_embedding_model()
    sentence_cosine = float(np.max(video_segment_vectors([kitchen], model_name)[kitchen.pk]
                                   @ query_vector(QUESTION, model_name)))
    assert sentence_cosine - SENTENCE_MARGIN > chunk_cosine  # the case this is about

    set_cut_off(sentence_cosine - SENTENCE_MARGIN)
    assert [passage.video for passage in retrieve(QUESTION)] == [kitchen]

    set_cut_off(sentence_cosine - SENTENCE_MARGIN + 0.001)
    assert retrieve(QUESTION) == []
