"""The one token loop: every generation, on this node or through the cluster, is driven by a Scheduler.

    scheduler = Scheduler(stepper, tokenizer, context_length)
    sequence_id = scheduler.add(prompt_ids, max_tokens, params)   # each sequence its own limit and sampling
    while scheduler:
        step = scheduler.step()       # TokenDelta of this step; the sequences that ended, by id

Sequences join or leave between any two steps. A step builds one Rows per sequence that is not waiting
for a token: the tokens its stepper's KV cache has not seen yet (decode tokens first, then prompt blocks,
oldest prompt first, within the stepper's prefill budget), hands them to the stepper and accepts the
tokens that come back: stop tokens, max_tokens, a full context and incremental detokenization are
decided here and nowhere else.

A stepper is what differs between this node and the cluster: it owns each sequence's KV caches and
sampler, runs rows through the model and returns the tokens sampled after the rows that end a
sequence's known tokens (engine.LocalStepper calls forward() over the stage weights; the cluster's
PipelineStepper sends micro-batches through the stages, whose last one samples). A stepper that lost
its caches (the cluster re-planned over the surviving nodes) raises CachesLost: every sequence is then
fed again from its first token, prompt blocks and then one step per generated token, which repeats the
original computation.

Generation runs a set of prompts to their end on a scheduler of its own and measures the stats.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from inference.core.sampling import SamplingParams, repeats_ngram
from inference.core.tokenizer import IncrementalDecoder, Tokenizer

# Long enough that the matmuls run at full BLAS speed, short enough that the [H, T, t] attention
# scores of one block stay a few MB.
PREFILL_BLOCK_TOKENS = 256


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0  # from the start until every sequence has its first token
    prefill_tok_s: float = 0.0
    decode_tok_s: float = 0.0  # tokens after the first ones, per second of generating after them


@dataclass(frozen=True)
class TokenDelta:
    sequence: int  # index of the prompt this token continues (Generation), or its id (Scheduler)
    token_id: int | None  # None for text held back until the sequence ended
    text: str  # may be empty while a multi-byte character is incomplete


@dataclass
class SequenceResult:
    prompt_ids: list[int]
    token_ids: list[int] = field(default_factory=list)  # generated, stop token excluded
    text: str = ""
    finish_reason: str | None = None  # "stop" (a stop token) or "length" (max_tokens or context full)


@dataclass(eq=False)
class Sequence:
    id: int
    result: SequenceResult
    max_tokens: int
    params: SamplingParams
    decoder: IncrementalDecoder
    shared_prefix_tokens: int  # a head many prompts begin with; a stepper may keep its keys and values
    fed: int = 0  # tokens, prompt then generated ones, handed to the stepper
    awaiting: bool = False  # its last rows end at its last token and their next token has not come back

    @property
    def reading_prompt(self) -> bool:
        return self.fed < len(self.result.prompt_ids)


@dataclass(frozen=True)
class Rows:
    """One sequence's share of a step: `tokens` continue what the stepper's cache of it holds."""

    sequence: Sequence
    tokens: list[int]
    chunks: list[int]  # sizes of the forward calls over `tokens`: prompt blocks, then one per generated token
    restart: bool  # the sequence's first tokens: its cache starts empty (or from a kept shared prefix)
    samples: bool  # ends at the sequence's last token: the stepper returns the token after it


class CachesLost(Exception):
    """The stepper dropped every sequence's cache (the cluster re-planned): feed them again from the start."""


class Stepper(Protocol):
    # Prompt tokens read per step over all sequences; None: every prompt whole, in PREFILL_BLOCK_TOKENS chunks.
    prefill_tokens_per_step: int | None

    def start(self, sequence: Sequence) -> int:
        """Prepare a new sequence; returns how many of its prompt tokens are already cached (a shared prefix)."""

    def run(self, rows: list[Rows]) -> list[tuple[int, int]]:
        """(sequence id, next token) for rows that sample: all of them, or those whose tokens came back so far."""

    def finish(self, sequence_id: int) -> None:
        """Drop the sequence's cache and sampler."""

    def close(self) -> None:
        """Drop everything; the stepper is not used again."""


@dataclass
class BatchStep:
    deltas: list[TokenDelta]
    finished: dict[int, SequenceResult]  # sequences that ended in this step, by id; they have left the scheduler


def check_prompt(prompt: list[int], context_length: int) -> None:
    if not prompt:
        raise ValueError("a prompt needs at least one token")
    if len(prompt) >= context_length:
        raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in a {context_length}-token context")


def prompt_blocks(n_tokens: int) -> list[int]:
    return [min(PREFILL_BLOCK_TOKENS, n_tokens - start) for start in range(0, n_tokens, PREFILL_BLOCK_TOKENS)]


class Scheduler:
    def __init__(self, stepper: Stepper, tokenizer: Tokenizer, context_length: int):
        self.stepper = stepper
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.sequences: dict[int, Sequence] = {}  # by id, in the order they joined
        self.next_id = 0

    def __len__(self) -> int:
        return len(self.sequences)

    def add(self, prompt_ids: list[int], max_tokens: int, params: SamplingParams, shared_prefix_tokens: int = 0) -> int:
        check_prompt(prompt_ids, self.context_length)
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        sequence = Sequence(
            id=self.next_id,
            result=SequenceResult(prompt_ids=list(prompt_ids)),
            max_tokens=max_tokens,
            params=params,
            decoder=IncrementalDecoder(self.tokenizer),
            shared_prefix_tokens=shared_prefix_tokens,
        )
        sequence.fed = self.stepper.start(sequence)
        self.sequences[sequence.id] = sequence
        self.next_id += 1
        return sequence.id

    def remove(self, sequence_id: int) -> None:
        """Drop a sequence nobody reads any more; its caches are freed."""
        del self.sequences[sequence_id]
        self.stepper.finish(sequence_id)

    def close(self) -> None:
        self.sequences.clear()
        self.stepper.close()

    def step(self) -> BatchStep:
        if not self.sequences:
            return BatchStep(deltas=[], finished={})
        try:
            tokens = self.stepper.run(self.next_rows())
        except CachesLost:
            for sequence in self.sequences.values():
                sequence.fed, sequence.awaiting = 0, False
            return BatchStep(deltas=[], finished={})
        deltas: list[TokenDelta] = []
        finished: dict[int, SequenceResult] = {}
        for sequence_id, token in tokens:
            sequence = self.sequences[sequence_id]
            sequence.awaiting = False
            deltas.extend(self.accept(sequence, token))
            if sequence.result.finish_reason is not None:
                finished[sequence_id] = sequence.result
                self.remove(sequence_id)
        return BatchStep(deltas=deltas, finished=finished)

    def next_rows(self) -> list[Rows]:
        """Every waiting token of the generating sequences, then prompt tokens within the prefill budget."""
        ready = [sequence for sequence in self.sequences.values() if not sequence.awaiting]
        budget = self.stepper.prefill_tokens_per_step
        rows = []
        for sequence in sorted(ready, key=lambda sequence: sequence.reading_prompt):
            prompt, generated = sequence.result.prompt_ids, sequence.result.token_ids
            prompt_left = prompt[min(sequence.fed, len(prompt)) :]
            reading = prompt_left if budget is None else prompt_left[:budget]
            if prompt_left and not reading:
                continue
            if budget is not None:
                budget -= len(reading)
            samples = len(reading) == len(prompt_left)
            # Generated tokens not fed yet: the last one while decoding, every one of them in a replay.
            generated_left = generated[max(sequence.fed - len(prompt), 0) :] if samples else []
            chunks = prompt_blocks(len(reading)) + [1] * len(generated_left)
            rows.append(Rows(sequence, reading + generated_left, chunks, restart=sequence.fed == 0, samples=samples))
            sequence.fed += len(reading) + len(generated_left)
            sequence.awaiting = samples
        return rows

    def accept(self, sequence: Sequence, token: int) -> Iterator[TokenDelta]:
        """Record a sampled token and stream its text; set finish_reason when the sequence ends."""
        result = sequence.result
        # Positions the cache holds once this token is fed back in: the prompt and every earlier token.
        context_full = len(result.prompt_ids) + len(result.token_ids) >= self.context_length
        # A run of tokens generated a second time is a loop (SamplingParams.stop_repeated_ngram): it ends
        # the sequence as a stop token would, without its last token. The check copies and scans every id
        # generated so far, O(length) per token and O(length^2) per sequence (a few tens of thousands of int
        # comparisons at 256 tokens, small beside a forward step); n is read first so that a sequence without
        # the stop pays none of it.
        n = sequence.params.stop_repeated_ngram
        if token in self.tokenizer.stop_token_ids or (n and repeats_ngram([*result.token_ids, token], n)):
            result.finish_reason = "stop"
        else:
            result.token_ids.append(token)
            text = sequence.decoder.push(token)
            result.text += text
            yield TokenDelta(sequence=sequence.id, token_id=token, text=text)
            if len(result.token_ids) >= sequence.max_tokens or context_full:
                result.finish_reason = "length"
        if result.finish_reason is not None and (tail := sequence.decoder.flush()):
            result.text += tail
            yield TokenDelta(sequence=sequence.id, token_id=None, text=tail)


class Generation:
    """Iterate to run prompts to their end and receive TokenDelta as tokens come; afterwards `results`
    holds each sequence's tokens, text and finish reason, and `stats` the timings."""

    def __init__(self, scheduler: Scheduler, prompts: list[list[int]], max_tokens: int, params: SamplingParams,
                 stats: GenerationStats | None = None):
        for prompt in prompts:
            check_prompt(prompt, scheduler.context_length)
        self.scheduler = scheduler
        self.stats = stats or GenerationStats()
        self.stats.prompt_tokens = sum(len(prompt) for prompt in prompts)
        if max_tokens > 0:
            ids = [scheduler.add(prompt, max_tokens, params) for prompt in prompts]
            self.results = [scheduler.sequences[sequence_id].result for sequence_id in ids]
        else:
            self.results = [SequenceResult(prompt_ids=list(prompt)) for prompt in prompts]

    def __iter__(self) -> Iterator[TokenDelta]:
        # A fresh scheduler numbers its sequences from 0: their ids are the indices of the prompts.
        started = time.perf_counter()
        first_tokens_at = None
        decoded_tokens = 0
        try:
            while self.scheduler:
                step = self.scheduler.step()
                if first_tokens_at is not None:
                    decoded_tokens += sum(delta.token_id is not None for delta in step.deltas)
                yield from step.deltas
                if first_tokens_at is None and all(r.token_ids or r.finish_reason for r in self.results):
                    first_tokens_at = time.perf_counter()
        finally:
            self.scheduler.close()
        finished_at = time.perf_counter()
        stats = self.stats
        stats.ttft_s = (first_tokens_at or finished_at) - started
        stats.prefill_tok_s = stats.prompt_tokens / stats.ttft_s if stats.ttft_s else 0.0
        stats.generated_tokens = sum(len(result.token_ids) for result in self.results)
        stats.decode_tok_s = decoded_tokens / (finished_at - first_tokens_at) if decoded_tokens else 0.0
