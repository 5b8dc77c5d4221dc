"""Cut a timed transcript into overlapping time windows for retrieval. Django-free."""
from dataclasses import dataclass

TARGET_WORDS = 200
TARGET_SECONDS = 60.0
OVERLAP_SECONDS = 10.0


@dataclass
class TimedChunk:
    start_s: float
    end_s: float
    text: str
    segment_times: list


def chunk_segments(segments, target_words=TARGET_WORDS, target_seconds=TARGET_SECONDS, overlap_s=OVERLAP_SECONDS):
    """Group whole segments until a window holds ~target_words words or spans ~target_seconds; the next
    window starts with the segments of the last overlap_s seconds, so an answer cut at a boundary is whole
    in one of the two chunks."""
    chunks = []
    window = []
    for segment in segments:
        window.append(segment)
        words = sum(len(item["text"].split()) for item in window)
        if words >= target_words or window[-1]["end"] - window[0]["start"] >= target_seconds:
            chunks.append(as_chunk(window))
            window = overlap_tail(window, overlap_s)
    if window and (not chunks or window[-1]["end"] > chunks[-1].end_s):
        chunks.append(as_chunk(window))
    return chunks


def overlap_tail(window, overlap_s):
    """The last segments of a full window that start within overlap_s of its end, never the whole window."""
    end = window[-1]["end"]
    return [segment for segment in window[1:] if segment["start"] >= end - overlap_s]


def as_chunk(window):
    return TimedChunk(
        start_s=window[0]["start"],
        end_s=window[-1]["end"],
        text=" ".join(segment["text"].strip() for segment in window),
        segment_times=[[segment["start"], segment["end"]] for segment in window],
    )
