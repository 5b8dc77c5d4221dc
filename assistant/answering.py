"""Grounded answers: retrieve passages, prompt the model with numbered sources, stream its answer, then
resolve each citation [n] to the second of the video that best supports what was said."""
import re
import time
from urllib.parse import urlsplit

import numpy as np

from ingest import retrieval
from assistant.generation import DEFAULT_MAX_TOKENS, chat_model, sampling_params
from ingest.embedding import embed_texts
from inference.model_files import DEFAULT_MODEL as DEFAULT_LLM
GROUNDED_MODEL = "kotatsu"
NOT_COVERED = "The knowledge base does not cover this: no ingested video talks about it."
SYSTEM_PROMPT = (
    "You answer questions from employees using only the numbered video transcript excerpts below. "
    "After each statement, cite the excerpt it comes from as [1], [2] and so on. "
    "If the excerpts do not answer the question, say that the knowledge base does not cover it."
)
# Prefill dominates time to first token on a CPU, so sources get a fixed share, whatever the window.
SOURCE_TOKENS = 600
HISTORY_TOKENS = 400
CITATION = re.compile(r"\[(\d+)\]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be", "music.youtube.com"}


def link_at(url, second):
    """The media URL opening at the second: YouTube reads &t=Ns, other media the #t=N fragment."""
    second = int(second)
    if urlsplit(url).hostname in YOUTUBE_HOSTS:
        return f"{url}{'&' if '?' in url else '?'}t={second}s"
    return f"{url.split('#')[0]}#t={second}"


def source_block(number, passage):
    return f'[{number}] "{passage.video.title}" ({clock(passage.start_s)}-{clock(passage.end_s)}): {passage.text}'


def clock(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


def recent_history(history, model, budget_tokens=HISTORY_TOKENS):
    """The latest turns that fit in budget_tokens, oldest first."""
    kept, used = [], 0
    for message in reversed(history):
        used += model.count_tokens(message["content"])
        if used > budget_tokens:
            break
        kept.append(message)
    return kept[::-1]


class GroundedAnswer:
    """Iterate for text deltas; afterwards text, sources, ttft_s and token counts are set.

    Retrieval happens on construction, so a prompt over the window fails before anything is streamed.
    """

    def __init__(self, question, history=(), filters=retrieval.Filters(), model_name=DEFAULT_LLM,
                 max_tokens=DEFAULT_MAX_TOKENS, temperature=0.0):
        self.started = time.perf_counter()
        self.question = question
        self.model = chat_model(model_name)
        self.history = recent_history(list(history), self.model)
        passages = retrieval.retrieve(question, filters)
        room = self.model.context_length - max_tokens - self.model.count_chat_tokens(self.messages([]))
        self.passages = retrieval.fit_to_budget(
            passages, min(SOURCE_TOKENS, room), lambda passage: self.model.count_tokens(source_block(0, passage))
        )
        self.stream = None
        if self.passages:
            self.stream = self.model.stream_chat(self.messages(self.passages), max_tokens, sampling_params(temperature),
                                                 shared_system_prompt=SYSTEM_PROMPT)
        self.text = ""
        self.sources = []
        self.ttft_s = None

    def messages(self, passages):
        sources = "\n".join(source_block(number, passage) for number, passage in enumerate(passages, start=1))
        system = f"{SYSTEM_PROMPT}\n\n{sources}" if passages else SYSTEM_PROMPT
        return [{"role": "system", "content": system}, *self.history, {"role": "user", "content": self.question}]

    @property
    def prompt_tokens(self):
        return self.stream.prompt_tokens if self.stream else 0

    @property
    def completion_tokens(self):
        return self.stream.completion_tokens if self.stream else 0

    @property
    def finish_reason(self):
        return self.stream.finish_reason if self.stream else "stop"

    def __iter__(self):
        for delta in self.stream if self.stream else [NOT_COVERED]:
            if self.ttft_s is None:
                self.ttft_s = time.perf_counter() - self.started
            self.text += delta
            yield delta
        self.sources = cited_sources(self.question, self.text, self.passages)


def warm_up():
    """What the first question would otherwise pay for: the embedding model, the FAISS and BM25 indexes, this
    node's LLM, and the system prompt's keys and values, which every grounded question then reuses."""
    retrieval.retrieve(SYSTEM_PROMPT)
    model = chat_model(DEFAULT_LLM)
    messages = [{"role": "system", "content": f"{SYSTEM_PROMPT}\n\n"}, {"role": "user", "content": "Hello."}]
    "".join(model.stream_chat(messages, 1, sampling_params(), shared_system_prompt=SYSTEM_PROMPT))


def cited_sources(question, answer, passages):
    """One source per passage given to the model, numbered as in the prompt, each pointing at the segment
    that best supports the answer: the one closest to the question plus closest to any of the answer's
    sentences citing the passage (any sentence when none cites it). The question keeps a rambling sentence
    from pulling the citation to a segment the answer merely borrowed words from."""
    if not passages:
        return []
    sentences = [sentence for sentence in SENTENCE_END.split(answer) if sentence.strip()]
    segment_texts = [segment["text"] for passage in passages for segment in passage.segments]
    vectors = embed_texts([question, *sentences, *segment_texts])
    question_vector, sentence_vectors = vectors[0], vectors[1 : 1 + len(sentences)]
    segment_vectors = vectors[1 + len(sentences):]
    sources, offset = [], 0
    for number, passage in enumerate(passages, start=1):
        own = segment_vectors[offset : offset + len(passage.segments)]
        offset += len(passage.segments)
        citing = [index for index, sentence in enumerate(sentences) if str(number) in CITATION.findall(sentence)]
        claims = sentence_vectors[citing or list(range(len(sentences)))]
        support = own @ question_vector + (np.max(own @ claims.T, axis=1) if len(claims) else 0.0)
        best = passage.segments[int(np.argmax(support))]
        sources.append({
            "n": number,
            "video_id": passage.video.pk,
            "title": passage.video.title,
            "url": link_at(passage.video.url, best["start"]),
            "start_s": round(float(best["start"]), 2),
            "end_s": round(float(best["end"]), 2),
            "score": round(passage.score, 4),
        })
    return sources
