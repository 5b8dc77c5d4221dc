"""The vectors of transcript segments, to place a statement on the segment that says it (citations, search
moments) without embedding a transcript while someone waits: ingestion stores them with the chunks
(SegmentVectors). A video ingested before they were stored, or whose vectors are by another model than the one
asked for (after a switch of embedding model), gets them once, the first time they are needed, and keeps them."""
import numpy as np

from ingest.embedding import embed_texts, segment_texts
from ingest.models import SegmentVectors
from ingest.services import do_store_segment_vectors


def video_segment_vectors(videos, model_name):
    """{video pk: float32 [len(video.segments), dims]} by model_name, stored ones read, missing ones embedded
    and stored."""
    stored = {row.video_id: row for row in SegmentVectors.objects.filter(
        video__in=[video.pk for video in videos], model=model_name)}
    vectors = {}
    for video in videos:
        row = stored.get(video.pk)
        if row is not None and len(row.array) == len(video.segments):
            vectors[video.pk] = row.array
        elif video.segments:
            vectors[video.pk] = embed_texts(segment_texts(video.segments), model_name)  # [segments, dims]
            do_store_segment_vectors(video, vectors[video.pk], model_name)
    return vectors


def passage_segment_vectors(passages, model_name):
    """float32 [S, dims]: the vectors of the passages' segments, passage after passage, by model_name."""
    by_video = video_segment_vectors(list({passage.video.pk: passage.video for passage in passages}.values()),
                                     model_name)
    rows = []
    for passage in passages:
        row_of = {segment_key(segment): row for row, segment in enumerate(passage.video.segments)}
        rows.append(by_video[passage.video.pk][[row_of[segment_key(segment)] for segment in passage.segments]])
    return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)


def segment_key(segment):
    """A segment of a video is told by its span: a passage's copy of it may carry its words rewritten."""
    return segment["start"], segment["end"]
