"""Streaming text generation over the numpy forward pass, with timing stats.

    engine = Engine("model.gguf")
    generation = engine.generate(engine.tokenizer.encode("Once upon"), max_tokens=32, params=SamplingParams())
    for delta in generation:           # token ids and text deltas as they are produced
        print(delta.text, end="")
    generation.stats                   # prompt tokens, TTFT, prefill and decode tok/s

Several prompts given to generate_batch are prefilled one by one, then decoded together: each
decode step is a single forward call whose matmuls cover one row per live sequence.

A server whose requests arrive at any time uses a ContinuousBatch instead: prompts join it between
steps, and each step reads the next block of joining prompts in the same forward call that decodes
one token of every sequence already generating.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from inference.core.forward import forward
from inference.core.gguf_loader import StageWeights, load_stage, read_gguf, without_tokenizer_vocabulary
from inference.core.kv_cache import KVCache, KVPrefix, Segment
from inference.core.sampling import Sampler, SamplingParams
from inference.core.tokenizer import IncrementalDecoder, Tokenizer

DEFAULT_CONTEXT_LENGTH = 4096
# Long enough that the matmuls run at full BLAS speed, short enough that the [H, T, t] attention
# scores of one block stay a few MB.
PREFILL_BLOCK_TOKENS = 256
# Shared prompt heads (system prompts) whose keys and values are kept, least recently used dropped first;
# one is ~46 KB per token for SmolLM2-135M, so a 60-token head costs under 3 MB.
SHARED_PREFIXES_KEPT = 8


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0  # from the call until every sequence has its first token
    prefill_tok_s: float = 0.0
    decode_tok_s: float = 0.0  # tokens after the first ones, per second of batched decoding


@dataclass(frozen=True)
class TokenDelta:
    sequence: int  # index of the prompt this token continues (Generation), or its id (ContinuousBatch)
    token_id: int | None  # None for text held back until the sequence ended
    text: str  # may be empty while a multi-byte character is incomplete


@dataclass
class SequenceResult:
    prompt_ids: list[int]
    token_ids: list[int] = field(default_factory=list)  # generated, stop token excluded
    text: str = ""
    finish_reason: str | None = None  # "stop" (a stop token) or "length" (max_tokens or context full)


class Engine:
    def __init__(self, model_path: str | os.PathLike, context_length: int = DEFAULT_CONTEXT_LENGTH):
        self.model = read_gguf(model_path)
        self.config = self.model.config
        self.context_length = min(context_length, self.config.context_length)
        self.tokenizer = Tokenizer(self.model)
        # The tokenizer holds its own vocabulary; the metadata's Python lists of it would cost ~15 MB more.
        self.model = without_tokenizer_vocabulary(self.model)
        self.weights: StageWeights = load_stage(
            self.model, range(self.config.n_layers), with_embedding=True, with_head=True
        )
        self.shared_prefixes: OrderedDict[tuple[int, ...], KVPrefix] = OrderedDict()  # by their token ids

    def reuse_shared_prefix(self, prefix_ids: tuple[int, ...], cache: KVCache) -> bool:
        """Start an empty cache from the kept keys and values of prefix_ids, if they are kept."""
        prefix = self.shared_prefixes.get(prefix_ids)
        if prefix is None:
            return False
        self.shared_prefixes.move_to_end(prefix_ids)
        cache.start_from(prefix)
        return True

    def keep_shared_prefix(self, prefix_ids: tuple[int, ...], cache: KVCache) -> None:
        """Keep the keys and values of prefix_ids, the first positions of a cache that has read them."""
        self.shared_prefixes[prefix_ids] = cache.prefix(len(prefix_ids))
        while len(self.shared_prefixes) > SHARED_PREFIXES_KEPT:
            self.shared_prefixes.popitem(last=False)

    def new_cache(self) -> KVCache:
        config = self.config
        return KVCache(config.n_layers, config.n_kv_heads, config.head_dim, self.context_length)

    def generate(self, prompt_ids: list[int], max_tokens: int, params: SamplingParams) -> Generation:
        return Generation(self, [prompt_ids], max_tokens, params)

    def generate_batch(self, prompts: list[list[int]], max_tokens: int, params: SamplingParams) -> Generation:
        return Generation(self, prompts, max_tokens, params)

    def continuous_batch(self) -> ContinuousBatch:
        return ContinuousBatch(self)

    def prefill(self, prompt_ids: list[int], cache: KVCache) -> np.ndarray:
        """Run a prompt through the model in blocks; logits after its last token [V]."""
        for start in range(0, len(prompt_ids), PREFILL_BLOCK_TOKENS):
            block = np.asarray(prompt_ids[start : start + PREFILL_BLOCK_TOKENS], dtype=np.int64)  # [T]
            logits = forward(block, self.weights, [Segment(cache, len(block))])  # [1, V]
        return logits[0]


def check_prompt(prompt: list[int], context_length: int) -> None:
    if not prompt:
        raise ValueError("a prompt needs at least one token")
    if len(prompt) >= context_length:
        raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in a {context_length}-token context")


class Generation:
    """Iterate to run the generation and receive TokenDelta as tokens come; afterwards `results`
    holds each sequence's tokens, text and finish reason, and `stats` the timings."""

    def __init__(self, engine: Engine, prompts: list[list[int]], max_tokens: int, params: SamplingParams):
        for prompt in prompts:
            check_prompt(prompt, engine.context_length)
        self.engine = engine
        self.max_tokens = max_tokens
        self.params = params
        self.results = [SequenceResult(prompt_ids=list(prompt)) for prompt in prompts]
        self.stats = GenerationStats(prompt_tokens=sum(len(prompt) for prompt in prompts))

    def __iter__(self) -> Iterator[TokenDelta]:
        engine, vocab_size = self.engine, self.engine.config.vocab_size
        caches = [engine.new_cache() for _ in self.results]
        samplers = [Sampler(self.params, vocab_size, r.prompt_ids) for r in self.results]
        decoders = [IncrementalDecoder(engine.tokenizer) for _ in self.results]
        if self.max_tokens <= 0:
            return

        started = time.perf_counter()
        next_tokens = [sampler.next_token(engine.prefill(r.prompt_ids, cache)) for r, cache, sampler in zip(self.results, caches, samplers)]
        prefill_done = time.perf_counter()
        self.stats.ttft_s = prefill_done - started
        self.stats.prefill_tok_s = self.stats.prompt_tokens / self.stats.ttft_s
        yield from self._accept(next_tokens, range(len(self.results)), decoders, caches)

        decoded_tokens = 0
        while live := [i for i, r in enumerate(self.results) if r.finish_reason is None]:
            inputs = np.asarray([self.results[i].token_ids[-1] for i in live], dtype=np.int64)  # [B]
            logits = forward(inputs, engine.weights, [Segment(caches[i], 1) for i in live])  # [B, V]
            next_tokens = [samplers[i].next_token(row) for i, row in zip(live, logits)]
            decoded_tokens += len(live)
            yield from self._accept(next_tokens, live, decoders, caches)
        decode_time = time.perf_counter() - prefill_done
        self.stats.generated_tokens = sum(len(r.token_ids) for r in self.results)
        self.stats.decode_tok_s = decoded_tokens / decode_time if decoded_tokens else 0.0

    def _accept(self, tokens: list[int], sequences, decoders, caches) -> Iterator[TokenDelta]:
        for token, index in zip(tokens, sequences):
            context_full = caches[index].length >= caches[index].capacity
            yield from accept_token(
                self.results[index], index, token, decoders[index], self.engine.tokenizer.stop_token_ids,
                self.max_tokens, context_full,
            )


@dataclass
class RunningSequence:
    result: SequenceResult
    max_tokens: int
    cache: KVCache
    sampler: Sampler
    decoder: IncrementalDecoder
    prompt_read: int = 0  # prompt tokens already in the cache
    prefix_to_keep: tuple[int, ...] = ()  # a shared head to keep once the prompt is read

    @property
    def reading_prompt(self) -> bool:
        return self.prompt_read < len(self.result.prompt_ids)


@dataclass
class BatchStep:
    deltas: list[TokenDelta]
    finished: dict[int, SequenceResult]  # sequences that ended in this step, by id; they have left the batch


class ContinuousBatch:
    """Sequences generated together that prompts join, or leave, between any two steps.

        batch = engine.continuous_batch()
        sequence_id = batch.add(prompt_ids, max_tokens, params)   # each sequence its own limit and sampling
        batch.add(prompt_ids, max_tokens, params, shared_prefix_tokens=60)   # a head many prompts start with
        while batch:
            step = batch.step()      # TokenDelta.sequence is the id add() returned

    A step is one forward call over one token of every generating sequence plus up to
    PREFILL_BLOCK_TOKENS prompt tokens of the sequences still reading their prompt, oldest first; a
    sequence's first token comes in the step that reads the end of its prompt. So a prompt that
    joins waits for one step, not for the others to finish, the generating sequences keep going while
    it is read, and their rows share the weights' memory reads with the prompt block.

    A shared prefix (the system prompt every request of a kind begins with) is read once: its keys and
    values are kept by the engine and copied into later sequences that start with the same token ids.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sequences: dict[int, RunningSequence] = {}  # by id, in the order they joined
        self.next_id = 0

    def __len__(self) -> int:
        return len(self.sequences)

    def add(self, prompt_ids: list[int], max_tokens: int, params: SamplingParams, shared_prefix_tokens: int = 0) -> int:
        engine = self.engine
        check_prompt(prompt_ids, engine.context_length)
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        sequence = RunningSequence(
            result=SequenceResult(prompt_ids=list(prompt_ids)),
            max_tokens=max_tokens,
            cache=engine.new_cache(),
            sampler=Sampler(params, engine.config.vocab_size, prompt_ids),
            decoder=IncrementalDecoder(engine.tokenizer),
        )
        # The prompt's last token is always read: its logits give the first generated token.
        prefix_ids = tuple(prompt_ids[: min(shared_prefix_tokens, len(prompt_ids) - 1)])
        if prefix_ids and engine.reuse_shared_prefix(prefix_ids, sequence.cache):
            sequence.prompt_read = len(prefix_ids)
        else:
            sequence.prefix_to_keep = prefix_ids
        sequence_id, self.next_id = self.next_id, self.next_id + 1
        self.sequences[sequence_id] = sequence
        return sequence_id

    def remove(self, sequence_id: int) -> None:
        """Drop a sequence nobody reads any more; its cache is freed."""
        del self.sequences[sequence_id]

    def step(self) -> BatchStep:
        rows: list[np.ndarray] = []
        segments: list[Segment] = []
        stepped: list[tuple[int, RunningSequence, bool]] = []  # (id, sequence, whether this row samples)
        for sequence_id, sequence in self.sequences.items():
            if not sequence.reading_prompt:
                rows.append(np.asarray(sequence.result.token_ids[-1:], dtype=np.int64))  # [1]
                segments.append(Segment(sequence.cache, 1))
                stepped.append((sequence_id, sequence, True))
        budget = PREFILL_BLOCK_TOKENS
        for sequence_id, sequence in self.sequences.items():
            if sequence.reading_prompt and budget > 0:
                block = sequence.result.prompt_ids[sequence.prompt_read : sequence.prompt_read + budget]
                rows.append(np.asarray(block, dtype=np.int64))  # [T_s]
                segments.append(Segment(sequence.cache, len(block)))
                sequence.prompt_read += len(block)
                budget -= len(block)
                stepped.append((sequence_id, sequence, not sequence.reading_prompt))
        if not segments:
            return BatchStep(deltas=[], finished={})

        logits = forward(np.concatenate(rows), self.engine.weights, segments)  # [T] -> [S, V]
        deltas: list[TokenDelta] = []
        finished: dict[int, SequenceResult] = {}
        stop_token_ids = self.engine.tokenizer.stop_token_ids
        for (sequence_id, sequence, samples), row in zip(stepped, logits):
            if not samples:
                continue
            if sequence.prefix_to_keep:
                self.engine.keep_shared_prefix(sequence.prefix_to_keep, sequence.cache)
                sequence.prefix_to_keep = ()
            context_full = sequence.cache.length >= sequence.cache.capacity
            token = sequence.sampler.next_token(row)
            deltas.extend(accept_token(
                sequence.result, sequence_id, token, sequence.decoder, stop_token_ids, sequence.max_tokens, context_full,
            ))
            if sequence.result.finish_reason is not None:
                finished[sequence_id] = sequence.result
                del self.sequences[sequence_id]
        return BatchStep(deltas=deltas, finished=finished)


def accept_token(
    result: SequenceResult, index: int, token: int, decoder: IncrementalDecoder, stop_token_ids,
    max_tokens: int, context_full: bool,
) -> Iterator[TokenDelta]:
    """Record a sampled token in `result` and stream its text; set finish_reason when the sequence ends.

    context_full: the KV cache has no position left to feed this token back in.
    """
    if token in stop_token_ids:
        result.finish_reason = "stop"
    else:
        result.token_ids.append(token)
        text = decoder.push(token)
        result.text += text
        yield TokenDelta(sequence=index, token_id=token, text=text)
        if len(result.token_ids) >= max_tokens or context_full:
            result.finish_reason = "length"
    if result.finish_reason is not None and (tail := decoder.flush()):
        result.text += tail
        yield TokenDelta(sequence=index, token_id=None, text=tail)
