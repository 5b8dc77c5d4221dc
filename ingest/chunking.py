"""Cut a timed transcript into overlapping time windows for retrieval. Django-free."""
import re
from dataclasses import dataclass

TARGET_WORDS = 200
TARGET_SECONDS = 60.0
OVERLAP_SECONDS = 10.0
# Scripts written without spaces (Han, kana, Hangul, half-width katakana), as in ingest/retrieval.py.
CJK_CHARACTER = re.compile("[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")
# A segment ending a sentence, in Latin or CJK punctuation, before any closing quote or bracket.
SENTENCE_END = re.compile(r"[.!?。！？…．][\"'”’」』）)\]]*$")
CJK_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]")


@dataclass
class TimedChunk:
    start_s: float
    end_s: float
    text: str
    segment_times: list


def chunk_segments(segments, target_words=TARGET_WORDS, target_seconds=TARGET_SECONDS, overlap_s=OVERLAP_SECONDS):
    """Group whole segments until a window holds ~target_words words or spans ~target_seconds; a full window
    closes at its last sentence end when one is in its second half (the rest opens the next window), and the
    next window starts with the segments of the last overlap_s seconds, so an answer cut at a boundary is whole
    in one of the two chunks."""
    chunks = []
    window = []
    for segment in segments:
        window.append(segment)
        words = sum(word_count(item["text"]) for item in window)
        if words >= target_words or window[-1]["end"] - window[0]["start"] >= target_seconds:
            cut = sentence_cut(window)
            chunks.append(as_chunk(window[:cut]))
            window = overlap_tail(window[:cut], overlap_s) + window[cut:]
    if window and (not chunks or window[-1]["end"] > chunks[-1].end_s):
        chunks.append(as_chunk(window))
    return chunks


def word_count(text):
    """Words of space-separated text; a CJK character counts as half a word (Japanese and Chinese words
    average about two characters), so a Japanese transcript is cut by its length too, not only by time."""
    cjk_characters = len(CJK_CHARACTER.findall(text))
    return len(CJK_CHARACTER.sub(" ", text).split()) + cjk_characters / 2


def sentence_cut(window):
    """How many segments of a full window to close the chunk with: up to its last segment ending a sentence
    if that is in the second half of the window, else all of them (a transcript without punctuation)."""
    for cut in range(len(window), len(window) // 2, -1):
        if SENTENCE_END.search(window[cut - 1]["text"].strip()):
            return cut
    return len(window)


def overlap_tail(window, overlap_s):
    """The last segments of a full window that start within overlap_s of its end, never the whole window."""
    end = window[-1]["end"]
    return [segment for segment in window[1:] if segment["start"] >= end - overlap_s]


def as_chunk(window):
    return TimedChunk(
        start_s=window[0]["start"],
        end_s=window[-1]["end"],
        text=joined(segment["text"].strip() for segment in window),
        segment_times=[[segment["start"], segment["end"]] for segment in window],
    )


def joined(texts):
    """Segments joined by a space, except between CJK text, which has no spaces between words or sentences."""
    text = ""
    for part in texts:
        if text and not (ends_cjk(text) and starts_cjk(part)):
            text += " "
        text += part
    return text


def ends_cjk(text):
    return bool(CJK_CHARACTER.match(text[-1]) or CJK_PUNCTUATION.match(text[-1]))


def starts_cjk(text):
    return bool(text) and bool(CJK_CHARACTER.match(text[0]) or CJK_PUNCTUATION.match(text[0]))
