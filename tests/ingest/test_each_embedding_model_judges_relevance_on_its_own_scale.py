"""Relevance is cut off at the embedding model's own cosine (the catalog's min_relevance): EmbeddingGemma scores
unrelated questions where all-MiniLM-L6-v2 scores related ones, so one cut-off for every model refuses too much
with one and too little with the other."""
import pytest

from inference.catalog import BUILT_IN_MODELS
from inference.models import ModelEntry
from ingest.embedding import active_embedding_model
from ingest import retrieval
from ingest.retrieval import UNCALIBRATED_MIN_RELEVANCE, min_relevance, retrieve
from tests.assistant.conftest import ensure_model_catalog
from tests.assistant.knowledge import build_knowledge_base

EMBEDDING_MODELS = [spec for spec in BUILT_IN_MODELS if spec["kind"] == "embedding"]
QUESTION = "Where is the fire extinguisher in the kitchen?"


@pytest.mark.django_db
@pytest.mark.parametrize("spec", EMBEDDING_MODELS, ids=lambda spec: spec["name"])
def test_each_catalog_embedding_model_is_cut_off_at_its_own_cosine(spec):
    ensure_model_catalog()
    assert min_relevance(spec["name"]) == spec["min_relevance"]


@pytest.mark.django_db
def test_an_imported_embedding_model_is_cut_off_where_the_admin_sets_it_or_else_at_the_uncalibrated_cosine():
    imported = ModelEntry.objects.create(name="team-embedder", kind="embedding", format="directory", size=1, sha256="0" * 64)
    assert min_relevance("team-embedder") == UNCALIBRATED_MIN_RELEVANCE

    imported.min_relevance = 0.55
    imported.save()
    assert min_relevance("team-embedder") == 0.55


@pytest.mark.django_db
def test_retrieval_keeps_the_chunks_at_or_above_the_active_models_cut_off(monkeypatch):
    # The chunks as wholes: no sentence clears the cut-off plus this margin (see
    # test_a_chunk_one_of_whose_sentences_is_about_the_question_is_relevant).
    monkeypatch.setattr(retrieval, "SENTENCE_MARGIN", 2.0)
    ensure_model_catalog()
    build_knowledge_base()
    best = max(passage.score for passage in retrieve(QUESTION))
    active = ModelEntry.objects.get(name=active_embedding_model())

    active.min_relevance = best + 0.001
    active.save()
    assert retrieve(QUESTION) == []

    active.min_relevance = best
    active.save()
    assert max(passage.score for passage in retrieve(QUESTION)) == best
