"""Placing a citation reads the vectors of the transcript segments that ingestion stored: none of the given
segments is embedded while the asker waits, only the answer's own sentence. A video ingested before segment
vectors were stored, or whose vectors are by another embedding model than the active one, gets them at its first
citation and keeps them."""
import numpy as np
import pytest

from assistant import answering
from assistant.answering import AnswerCheck, checked_sentences
from ingest import segment_vectors
from ingest.embedding import active_embedding_model, embed_texts, segment_texts
from ingest.models import SegmentVectors
from ingest.retrieval import retrieve

pytestmark = pytest.mark.django_db
QUESTION = "Where is the first aid kit?"
ANSWER = "The first aid kit is in the white cabinet beside the refrigerator."


@pytest.fixture
def embedded(monkeypatch):
    """Every text the embedding model is given while citing."""
    texts = []

    def recording(inputs, *args, **kwargs):
        texts.extend(inputs)
        return embed_texts(inputs, *args, **kwargs)

    monkeypatch.setattr(answering, "embed_texts", recording)
    monkeypatch.setattr(segment_vectors, "embed_texts", recording)
    return texts


def cite(passages):
    check = AnswerCheck(QUESTION, passages)
    text = "".join(checked_sentences([ANSWER], check))
    return text, check.evidence.sources(text)


def test_citing_embeds_the_answer_sentence_and_none_of_the_segments(knowledge, embedded):
    passages = retrieve(QUESTION)
    kitchen = next(number for number, passage in enumerate(passages, start=1) if passage.video == knowledge["kitchen"])

    text, _ = cite(passages)

    assert text == f"{ANSWER[:-1]} [{kitchen}]."
    given = {segment["text"].strip() for passage in passages for segment in passage.segments}
    assert embedded and not given & set(embedded), embedded


def test_a_video_ingested_without_segment_vectors_gets_them_at_its_first_citation_and_keeps_them(knowledge, embedded):
    kitchen = knowledge["kitchen"]
    SegmentVectors.objects.filter(video=kitchen).delete()
    passages = [passage for passage in retrieve(QUESTION) if passage.video == kitchen]

    first = cite(passages)
    stored = SegmentVectors.objects.get(video=kitchen)
    assert stored.model == active_embedding_model() and stored.array.shape[0] == len(kitchen.segments)
    np.testing.assert_allclose(stored.array, embed_texts(segment_texts(kitchen.segments)), atol=1e-5)
    embedded.clear()

    assert cite(passages) == first
    assert not set(segment_texts(kitchen.segments)) & set(embedded), embedded


def test_segment_vectors_by_another_embedding_model_are_made_again_with_the_active_one(knowledge):
    kitchen = knowledge["kitchen"]
    SegmentVectors.objects.filter(video=kitchen).update(model="all-minilm-l6-v2")
    passages = [passage for passage in retrieve(QUESTION) if passage.video == kitchen]

    cite(passages)

    assert SegmentVectors.objects.get(video=kitchen).model == active_embedding_model()
