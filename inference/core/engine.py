"""This node's engine: the whole model in memory, generating through the scheduler's token loop.

    engine = Engine("model.gguf")
    generation = engine.generate(engine.tokenizer.encode("Once upon"), max_tokens=32, params=SamplingParams())
    for delta in generation:           # token ids and text deltas as they are produced
        print(delta.text, end="")
    generation.stats                   # prompt tokens, TTFT, prefill and decode tok/s

generate_batch runs several prompts together, and a server whose requests arrive at any time keeps one
engine.scheduler() that prompts join between steps (inference.core.scheduler). Each step is one forward
call over one token of every generating sequence plus up to PREFILL_BLOCK_TOKENS prompt tokens of the
sequences still reading theirs, so a prompt that joins waits for one step, not for the others to finish,
and the rows of a step share the weights' memory reads.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from inference.core.forward import forward
from inference.core.gguf_loader import StageWeights, load_stage, read_gguf, without_tokenizer_vocabulary
from inference.core.kv_cache import KVCache, KVPrefix, Segment
from inference.core.sampling import Sampler, SamplingParams
from inference.core.scheduler import PREFILL_BLOCK_TOKENS, Generation, Rows, Scheduler, Sequence
from inference.core.tokenizer import Tokenizer

DEFAULT_CONTEXT_LENGTH = 4096
# Shared prompt heads (system prompts) whose keys and values are kept, least recently used dropped first;
# one is ~46 KB per token for SmolLM2-135M, so a 60-token head costs under 3 MB.
SHARED_PREFIXES_KEPT = 8


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
        return self.generate_batch([prompt_ids], max_tokens, params)

    def generate_batch(self, prompts: list[list[int]], max_tokens: int, params: SamplingParams) -> Generation:
        return Generation(self.scheduler(), prompts, max_tokens, params)

    def scheduler(self) -> Scheduler:
        """A token loop that prompts join and leave between steps, each with its own limit and sampling."""
        return Scheduler(LocalStepper(self), self.tokenizer, self.context_length)

    def prefill(self, prompt_ids: list[int], cache: KVCache) -> np.ndarray:
        """Run a prompt through the model in blocks; logits after its last token [V]."""
        for start in range(0, len(prompt_ids), PREFILL_BLOCK_TOKENS):
            block = np.asarray(prompt_ids[start : start + PREFILL_BLOCK_TOKENS], dtype=np.int64)  # [T]
            logits = forward(block, self.weights, [Segment(cache, len(block))])  # [1, V]
        return logits[0]


@dataclass
class LocalSequence:
    cache: KVCache
    sampler: Sampler
    prefix_to_keep: tuple[int, ...] = ()  # a shared head to keep once the prompt is read


class LocalStepper:
    """Runs a step's rows through the whole model on this node, in one forward call.

    A shared prefix (the system prompt every request of a kind begins with) is read once: its keys and
    values are kept by the engine and copied into later sequences that start with the same token ids.
    """

    # One block per step: each sequence's rows are then a single segment of the step's forward call.
    prefill_tokens_per_step = PREFILL_BLOCK_TOKENS

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sequences: dict[int, LocalSequence] = {}

    def start(self, sequence: Sequence) -> int:
        engine, prompt_ids = self.engine, sequence.result.prompt_ids
        state = LocalSequence(engine.new_cache(), Sampler(sequence.params, engine.config.vocab_size, prompt_ids))
        self.sequences[sequence.id] = state
        # The prompt's last token is always read: its logits give the first generated token.
        prefix_ids = tuple(prompt_ids[: min(sequence.shared_prefix_tokens, len(prompt_ids) - 1)])
        if prefix_ids and engine.reuse_shared_prefix(prefix_ids, state.cache):
            return len(prefix_ids)
        state.prefix_to_keep = prefix_ids
        return 0

    def run(self, rows: list[Rows]) -> list[tuple[int, int]]:
        if not rows:
            return []
        states = [self.sequences[row.sequence.id] for row in rows]
        inputs = np.asarray([token for row in rows for token in row.tokens], dtype=np.int64)  # [T]
        segments = [Segment(state.cache, len(row.tokens)) for row, state in zip(rows, states)]
        logits = forward(inputs, self.engine.weights, segments)  # [S, V]
        tokens = []
        for row, state, row_logits in zip(rows, states, logits):
            if not row.samples:
                continue
            if state.prefix_to_keep:
                self.engine.keep_shared_prefix(state.prefix_to_keep, state.cache)
                state.prefix_to_keep = ()
            tokens.append((row.sequence.id, state.sampler.next_token(row_logits)))
        return tokens

    def finish(self, sequence_id: int) -> None:
        del self.sequences[sequence_id]

    def close(self) -> None:
        self.sequences.clear()
