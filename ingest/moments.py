"""Moments where something was said: the passages of the one retrieval, each narrowed to the transcript segment
that says the words searched for best, with its second."""
from dataclasses import dataclass

from ingest.embedding import active_embedding_model, query_vector
from ingest.retrieval import Filters, retrieve, tokenize
from ingest.segment_vectors import passage_segment_vectors

# Sharing the searched words counts as much as meaning: "where did someone say X" is mostly about the words.
WORD_MATCH_WEIGHT = 0.5


@dataclass(frozen=True)
class Moment:
    video: object
    start_s: float
    end_s: float
    text: str  # the words said in the segment
    before: str  # the segment before and after it, for context
    after: str


def find_moments(query, filters=Filters(), limit=10):
    """One moment per passage retrieve() finds, best first: the passage's segment closest to the query in meaning
    plus the share of the query's words it contains."""
    passages = [passage for passage in retrieve(query, filters, limit=limit) if passage.segments]
    if not passages:
        return []
    terms = set(tokenize(query))
    texts = [segment["text"].strip() for passage in passages for segment in passage.segments]
    model_name = active_embedding_model()
    cosines = passage_segment_vectors(passages, model_name) @ query_vector(query, model_name)  # [segments]
    moments, offset = [], 0
    for passage in passages:
        segments = passage.segments
        scores = [
            float(cosines[offset + index]) + WORD_MATCH_WEIGHT * word_share(terms, texts[offset + index])
            for index in range(len(segments))
        ]
        offset += len(segments)
        best = max(range(len(segments)), key=scores.__getitem__)
        moments.append(Moment(
            video=passage.video,
            start_s=float(segments[best]["start"]),
            end_s=float(segments[best]["end"]),
            text=segments[best]["text"].strip(),
            before=segments[best - 1]["text"].strip() if best > 0 else "",
            after=segments[best + 1]["text"].strip() if best + 1 < len(segments) else "",
        ))
    return moments


def word_share(terms, text):
    """The share of the query's terms (BM25's: words, or CJK bigrams) that the text contains."""
    return len(terms & set(tokenize(text))) / len(terms) if terms else 0.0
