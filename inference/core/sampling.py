"""Choosing the next token from logits: penalties, then greedy or filtered random sampling.

Penalties follow the usual conventions: the repetition penalty (CTRL / transformers) applies to
every token already in the context, prompt included; frequency and presence penalties (OpenAI)
apply to the tokens generated so far. A sequence that generates again a run of tokens it generated
before is looping: with stop_repeated_ngram set, the token loop ends it there (repeats_ngram).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0 means greedy
    top_k: int = 0  # 0 keeps every token
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    # End the sequence ("stop") when its last this-many generated tokens already occurred in that order
    # earlier in what it generated; 0 never. Copying from the prompt is not repeating.
    stop_repeated_ngram: int = 0
    # Added to the logits of these token ids at every step, OpenAI's logit_bias: ((token id, bias), ...).
    logit_bias: tuple = ()


def apply_penalties(
    logits: np.ndarray, params: SamplingParams, context_ids, generated_counts: np.ndarray
) -> np.ndarray:
    """logits [V]; context_ids: every token id so far (a sequence of ints); generated_counts [V]: how often
    each was generated. Without penalties the logits come back as they are, uncopied."""
    if (params.repetition_penalty == 1.0 and not params.frequency_penalty and not params.presence_penalty
            and not params.logit_bias):
        return logits
    logits = logits.copy()  # [V]
    if params.logit_bias:
        token_ids, biases = zip(*params.logit_bias)
        np.add.at(logits, np.asarray(token_ids, dtype=np.int64), np.asarray(biases, dtype=np.float32))
    if params.repetition_penalty != 1.0 and len(context_ids):
        seen = np.unique(np.asarray(context_ids, dtype=np.int64))  # [U]
        # Dividing a negative logit would make it more likely, hence multiply those.
        logits[seen] = np.where(
            logits[seen] > 0, logits[seen] / params.repetition_penalty, logits[seen] * params.repetition_penalty
        )
    if params.frequency_penalty:
        logits -= np.float32(params.frequency_penalty) * generated_counts
    if params.presence_penalty:
        logits -= np.float32(params.presence_penalty) * (generated_counts > 0)
    return logits.astype(np.float32, copy=False)


def repeats_ngram(generated_ids, n: int) -> bool:
    """Whether the last n of generated_ids (a sequence of ints) occurred, in that order, earlier in it."""
    if n <= 0 or len(generated_ids) <= n:
        return False
    tail = list(generated_ids[-n:])
    last = tail[-1]
    # One pass over every earlier position; only where the tail's last token stands (a few per sentence) is the
    # whole n-gram compared.
    return any(
        generated_ids[end] == last and list(generated_ids[end - n + 1 : end + 1]) == tail
        for end in range(n - 1, len(generated_ids) - 1)
    )


def token_probabilities(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """The distribution random sampling draws from [V]: temperature, then top-k, top-p and min-p."""
    scaled = logits.astype(np.float64) / params.temperature  # [V]; float64 so tiny tails sum exactly
    if 0 < params.top_k < len(scaled):
        kth_largest = np.partition(scaled, -params.top_k)[-params.top_k]
        scaled[scaled < kth_largest] = -np.inf
    probs = np.exp(scaled - scaled.max())  # [V]
    probs /= probs.sum()
    if params.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")  # [V], most likely first
        mass_before = np.cumsum(probs[order]) - probs[order]  # [V]
        # Keep the smallest prefix whose mass reaches top_p: a token stays if the mass before it is short of it.
        probs[order[mass_before >= params.top_p]] = 0.0
    if params.min_p > 0.0:
        probs[probs < params.min_p * probs.max()] = 0.0
    return probs / probs.sum()


def sample_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    if params.temperature <= 0.0:
        return int(np.argmax(logits))
    probs = token_probabilities(logits, params)  # [V]
    return int(rng.choice(len(probs), p=probs))


class Sampler:
    """Sampling state of one sequence: its random generator and the tokens it has seen."""

    def __init__(self, params: SamplingParams, vocab_size: int, prompt_ids: list[int]):
        self.params = params
        self.rng = np.random.default_rng(params.seed)
        self.context_ids = list(prompt_ids)
        self.generated_counts = np.zeros(vocab_size, dtype=np.float32)  # [V]

    def next_token(self, logits: np.ndarray) -> int:
        penalized = apply_penalties(logits, self.params, self.context_ids, self.generated_counts)
        token = sample_token(penalized, self.params, self.rng)
        self.context_ids.append(token)
        self.generated_counts[token] += 1
        return token
