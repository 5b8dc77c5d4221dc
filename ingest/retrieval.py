"""Hybrid retrieval over the shared knowledge base: FAISS (meaning) and BM25 (exact words) fused by
reciprocal rank, filtered by source and date, with adjacent chunks of one video merged into one passage.

Dense search catches paraphrases; BM25 catches names, numbers and jargon the embedding model blurs.
Reciprocal rank fusion needs no calibration between their incomparable scores. Relevance, however, is
judged on the embedding's cosine alone, against the embedding model's own cut-off (the catalog's min_relevance):
it is the only score with a meaning across questions. A chunk is judged as a whole, and, for the few closest
below the cut-off, by its best sentence (transcript segment) too. The question is
embedded with the model of the index searched, and compared with that index's vectors only, so a switch of
embedding model completing during a question never mixes two models' vectors.
"""
import re
import threading
import unicodedata
from dataclasses import dataclass, field

import numpy as np
from rank_bm25 import BM25Okapi

from inference.services import catalog_model
from ingest.chunking import joined
from ingest.embedding import query_vector
from ingest.models import Chunk, KnowledgeBase
from ingest.replica import searchable_index
from ingest.segment_vectors import segment_key, video_segment_vectors

CANDIDATES_PER_RETRIEVER = 20
# Filters are applied after search: ask for more so that enough candidates survive them.
FILTERED_CANDIDATES_PER_RETRIEVER = 200
RRF_K = 60
# A chunk is a minute of transcript: a question about one sentence of it (a date said in passing) scores low
# against the whole, the more so in another language than the question's. The few closest chunks below the
# cut-off are kept when one of their segments clears the cut-off plus this margin, a sentence's cosine being
# higher than a minute's for related and unrelated text alike. 0.12: with EmbeddingGemma, questions no talk
# answers score at most 0.43 on any segment (0.33 + 0.10), a Japanese question on an English sentence that
# answers it 0.51 where the chunk scores 0.28 (bench/RESULTS.md, "A sentence that answers").
SENTENCE_MARGIN = 0.12
SENTENCE_CHECKED_CHUNKS = 5
# The relevance cut-off of an embedding model imported without one (the catalog's models each have their own,
# ModelEntry.min_relevance): all-MiniLM-L6-v2's, the scale of most sentence-transformers models.
UNCALIBRATED_MIN_RELEVANCE = 0.3
# Neighbouring chunks merge into passages of at most this many words (~530 tokens, under answering's 600-token
# source budget): a longer stretch, a whole video on the topic, would be one passage over the budget and be
# left out entirely. Counted as BM25 terms, so a Japanese passage, without spaces, counts about a word per character.
MAX_PASSAGE_WORDS = 400
# Scripts written without spaces between words (Han, kana, Hangul syllables, half-width katakana): their runs are
# cut into overlapping character bigrams, which match a Japanese or Chinese word wherever it stands in a sentence.
CJK_CHARS = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
TOKEN = re.compile(rf"([{CJK_CHARS}]+)|[^\W{CJK_CHARS}]+")


@dataclass(frozen=True)
class Filters:
    source_id: int | None = None
    published_after: object = None  # datetime or None
    published_before: object = None

    @property
    def active(self):
        return any(value is not None for value in (self.source_id, self.published_after, self.published_before))

    def chunks(self):
        chunks = Chunk.objects.all()
        if self.source_id is not None:
            chunks = chunks.filter(video__sources=self.source_id)
        if self.published_after is not None:
            chunks = chunks.filter(video__published_at__gte=self.published_after)
        if self.published_before is not None:
            chunks = chunks.filter(video__published_at__lt=self.published_before)
        return chunks


@dataclass
class Passage:
    """Consecutive chunks of one video, with the transcript segments they span."""

    video: object
    start_s: float
    end_s: float
    segments: list  # [{"start", "end", "text"}] in time order
    score: float  # best cosine similarity of its chunks to the question
    fused_rank: float
    chunk_positions: list = field(default_factory=list)

    @property
    def text(self):
        return joined(segment["text"].strip() for segment in self.segments)

    def as_dict(self):
        return {
            "video_id": self.video.pk,
            "title": self.video.title,
            "url": self.video.url,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.text,
            "score": round(self.score, 4),
            "fused_score": round(self.fused_rank, 6),
        }


def tokenize(text):
    """BM25 terms: lower-cased words of space-separated scripts, character bigrams of CJK runs (a lone CJK
    character stays a term of its own). NFKC first, so full-width letters and digits match their ASCII forms."""
    tokens = []
    for match in TOKEN.finditer(unicodedata.normalize("NFKC", text).lower()):
        cjk_run = match.group(1)
        if cjk_run is None:
            tokens.append(match.group())
        elif len(cjk_run) == 1:
            tokens.append(cjk_run)
        else:
            tokens.extend(cjk_run[i:i + 2] for i in range(len(cjk_run) - 1))
    return tokens


class LexicalIndex:
    """BM25 over every chunk, rebuilt in this process when the knowledge base changes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.version = None
        self.chunk_ids = np.zeros(0, dtype=np.int64)
        self.bm25 = None

    def search(self, question, allowed_ids, k):
        """Chunk ids by BM25 score, best first, only those with a matching word (and in allowed_ids if given)."""
        with self.lock:
            self.catch_up()
            if self.bm25 is None:
                return []
            scores = self.bm25.get_scores(tokenize(question))
            chunk_ids = self.chunk_ids
        order = np.argsort(-scores, kind="stable")
        found = []
        for index in order:
            if scores[index] <= 0 or len(found) == k:
                break
            chunk_id = int(chunk_ids[index])
            if allowed_ids is None or chunk_id in allowed_ids:
                found.append(chunk_id)
        return found

    def catch_up(self):
        # The time as well as the revision: a database restored to an earlier revision is another version.
        version = KnowledgeBase.objects.values_list("revision", "updated_at").first()
        if version == self.version:
            return
        rows = list(Chunk.objects.order_by("id").values_list("id", "text"))
        self.chunk_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        self.bm25 = BM25Okapi([tokenize(text) for _, text in rows]) if rows else None
        self.version = version


lexical_index = LexicalIndex()


def retrieve(question, filters=Filters(), limit=8):
    """Relevant passages for the question, best first; empty when the knowledge base does not cover it."""
    model_name, index = searchable_index()
    question_vector = query_vector(question, model_name)  # [dims]
    allowed_ids = set(filters.chunks().values_list("id", flat=True)) if filters.active else None
    k = FILTERED_CANDIDATES_PER_RETRIEVER if filters.active else CANDIDATES_PER_RETRIEVER
    rankings = [dense_search(index, question_vector, allowed_ids, k), lexical_index.search(question, allowed_ids, k)]
    fused = reciprocal_rank_fusion(rankings)
    # A chunk BM25 found but the index does not hold yet (stored since it caught up) waits for the next question.
    vectors = index.vectors_of(fused)
    chunks = Chunk.objects.filter(pk__in=list(vectors)).select_related("video")
    cutoff = min_relevance(model_name)
    relevant, below = [], []
    for chunk in chunks:
        cosine = float(np.dot(question_vector, vectors[chunk.pk]))
        (relevant if cosine >= cutoff else below).append((chunk, cosine, fused[chunk.pk]))
    below = sorted(below, key=lambda entry: -entry[1])[:SENTENCE_CHECKED_CHUNKS]
    relevant += said_in_a_sentence(below, question_vector, model_name, cutoff + SENTENCE_MARGIN, relevant)
    return merge_adjacent(relevant)[:limit]


def said_in_a_sentence(scored_chunks, question_vector, model_name, cutoff, relevant):
    """Those of the (chunk, cosine, fused score) triples one of whose transcript segments has a cosine of at
    least `cutoff` to the question, by the segment vectors kept since ingestion. A segment that a relevant
    chunk holds too (chunks overlap) does not count: that sentence is given already, and the chunk would
    only widen its passage to text about something else."""
    if not scored_chunks:
        return []
    videos = {chunk.video_id: chunk.video for chunk, _, _ in scored_chunks}
    segment_vectors = video_segment_vectors(list(videos.values()), model_name)
    given = {(chunk.video_id, tuple(span)) for chunk, _, _ in relevant for span in chunk.segment_times}
    kept = []
    for entry in scored_chunks:
        chunk = entry[0]
        spans = {tuple(span) for span in chunk.segment_times if (chunk.video_id, tuple(span)) not in given}
        inside = [row for row, segment in enumerate(chunk.video.segments) if segment_key(segment) in spans]
        vectors = segment_vectors.get(chunk.video_id)
        if inside and vectors is not None and float(np.max(vectors[inside] @ question_vector)) >= cutoff:
            kept.append(entry)
    return kept


def min_relevance(model_name):
    """The cosine below which a chunk is not about the question, on the scale of the embedding model: each
    model spreads related and unrelated text over its own range of cosines."""
    cutoff = catalog_model(model_name).min_relevance
    return UNCALIBRATED_MIN_RELEVANCE if cutoff is None else cutoff


def dense_search(index, question_vector, allowed_ids, k):
    scores, ids = index.search(question_vector, k)
    return [int(chunk_id) for chunk_id in ids[0] if chunk_id >= 0 and (allowed_ids is None or chunk_id in allowed_ids)]


def reciprocal_rank_fusion(rankings):
    """{chunk id: fused score}: the sum over rankings of 1 / (RRF_K + rank)."""
    fused = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    return fused


def merge_adjacent(scored_chunks):
    """Passages from (chunk, cosine, fused score) triples: neighbouring chunks of a video become one passage
    (up to MAX_PASSAGE_WORDS), ranked by its best fused score, so the model reads a continuous stretch of
    transcript once."""
    passages = []
    by_video = {}
    for chunk, cosine, fused in scored_chunks:
        by_video.setdefault(chunk.video_id, []).append((chunk, cosine, fused))
    for entries in by_video.values():
        entries.sort(key=lambda entry: entry[0].position)
        run = [entries[0]]
        for entry in entries[1:]:
            adjacent = entry[0].position == run[-1][0].position + 1
            if adjacent and len(tokenize(passage_of([*run, entry]).text)) <= MAX_PASSAGE_WORDS:
                run.append(entry)
            else:
                passages.append(passage_of(run))
                run = [entry]
        passages.append(passage_of(run))
    passages.sort(key=lambda passage: -passage.fused_rank)
    return passages


def passage_of(run):
    chunks = [chunk for chunk, _, _ in run]
    video = chunks[0].video
    start_s, end_s = chunks[0].start_s, max(chunk.end_s for chunk in chunks)
    return Passage(
        video=video,
        start_s=start_s,
        end_s=end_s,
        segments=segments_between(video, start_s, end_s),
        score=max(cosine for _, cosine, _ in run),
        fused_rank=max(fused for _, _, fused in run),
        chunk_positions=[chunk.position for chunk in chunks],
    )


def segments_between(video, start_s, end_s):
    """The video's transcript segments inside [start_s, end_s]: chunks overlap, segments do not repeat."""
    return [segment for segment in video.segments if segment["start"] >= start_s and segment["end"] <= end_s]


def fit_to_budget(passages, budget_tokens, tokens_of):
    """The best passages that fit in budget_tokens together (tokens_of(passage) each), in rank order."""
    kept, used = [], 0
    for passage in passages:
        cost = tokens_of(passage)
        if used + cost <= budget_tokens:
            kept.append(passage)
            used += cost
    return kept
