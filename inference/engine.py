"""Streaming text generation over the numpy forward pass, with timing stats.

    engine = Engine("model.gguf")
    generation = engine.generate(engine.tokenizer.encode("Once upon"), max_tokens=32, params=SamplingParams())
    for delta in generation:           # token ids and text deltas as they are produced
        print(delta.text, end="")
    generation.stats                   # prompt tokens, TTFT, prefill and decode tok/s

Several prompts given to generate_batch are prefilled one by one, then decoded together: each
decode step is a single forward call whose matmuls cover one row per live sequence.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from inference.forward import forward
from inference.gguf_loader import StageWeights, load_stage, read_gguf, without_tokenizer_vocabulary
from inference.kv_cache import KVCache, Segment
from inference.sampling import Sampler, SamplingParams
from inference.tokenizer import IncrementalDecoder, Tokenizer

DEFAULT_CONTEXT_LENGTH = 4096
# Long enough that the matmuls run at full BLAS speed, short enough that the [H, T, t] attention
# scores of one block stay a few MB.
PREFILL_BLOCK_TOKENS = 256


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0  # from the call until every sequence has its first token
    prefill_tok_s: float = 0.0
    decode_tok_s: float = 0.0  # tokens after the first ones, per second of batched decoding


@dataclass(frozen=True)
class TokenDelta:
    sequence: int  # index of the prompt this token continues
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

    def new_cache(self) -> KVCache:
        config = self.config
        return KVCache(config.n_layers, config.n_kv_heads, config.head_dim, self.context_length)

    def generate(self, prompt_ids: list[int], max_tokens: int, params: SamplingParams) -> Generation:
        return Generation(self, [prompt_ids], max_tokens, params)

    def generate_batch(self, prompts: list[list[int]], max_tokens: int, params: SamplingParams) -> Generation:
        return Generation(self, prompts, max_tokens, params)

    def prefill(self, prompt_ids: list[int], cache: KVCache) -> np.ndarray:
        """Run a prompt through the model in blocks; logits after its last token [V]."""
        for start in range(0, len(prompt_ids), PREFILL_BLOCK_TOKENS):
            block = np.asarray(prompt_ids[start : start + PREFILL_BLOCK_TOKENS], dtype=np.int64)  # [T]
            logits = forward(block, self.weights, [Segment(cache, len(block))])  # [1, V]
        return logits[0]


class Generation:
    """Iterate to run the generation and receive TokenDelta as tokens come; afterwards `results`
    holds each sequence's tokens, text and finish reason, and `stats` the timings."""

    def __init__(self, engine: Engine, prompts: list[list[int]], max_tokens: int, params: SamplingParams):
        for prompt in prompts:
            if not prompt:
                raise ValueError("a prompt needs at least one token")
            if len(prompt) >= engine.context_length:
                raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in a {engine.context_length}-token context")
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
