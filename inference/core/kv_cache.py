"""Per-sequence key/value cache for the layers of one pipeline stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class KVCache:
    """Keys and values of one sequence, for the layers one stage runs.

    Laid out [layer, kv_head, position, head_dim] so that each head's keys up to the current
    length are one strided 2-D block that a batched matmul reads without copying. np.zeros
    reserves address space only; pages become resident as positions are written.
    """

    def __init__(self, n_layers: int, n_kv_heads: int, head_dim: int, capacity: int):
        self.capacity = capacity
        self.keys = np.zeros((n_layers, n_kv_heads, capacity, head_dim), dtype=np.float32)  # [L, Hkv, C, Dh]
        self.values = np.zeros((n_layers, n_kv_heads, capacity, head_dim), dtype=np.float32)  # [L, Hkv, C, Dh]
        self.length = 0  # positions 0..length-1 hold valid entries

    def prefix(self, n_positions: int) -> KVPrefix:
        """A copy of the first n_positions entries, to start other sequences from."""
        return KVPrefix(
            keys=self.keys[:, :, :n_positions].copy(),  # [L, Hkv, n, Dh]
            values=self.values[:, :, :n_positions].copy(),  # [L, Hkv, n, Dh]
        )

    def start_from(self, prefix: KVPrefix) -> None:
        """Hold the prefix's positions as if this sequence had read them itself."""
        n_positions = prefix.keys.shape[2]
        self.keys[:, :, :n_positions] = prefix.keys  # [L, Hkv, n, Dh]
        self.values[:, :, :n_positions] = prefix.values  # [L, Hkv, n, Dh]
        self.length = n_positions

    @classmethod
    def bytes_per_position(cls, n_layers: int, n_kv_heads: int, head_dim: int) -> int:
        return 2 * n_layers * n_kv_heads * head_dim * np.dtype(np.float32).itemsize


@dataclass(frozen=True)
class KVPrefix:
    keys: np.ndarray  # [L, Hkv, n, Dh]
    values: np.ndarray  # [L, Hkv, n, Dh]


@dataclass(frozen=True)
class Segment:
    """`n_tokens` consecutive rows of a forward batch, continuing the sequence held in `cache`.

    Their positions are cache.length .. cache.length + n_tokens - 1 at the time of the call.
    A prefill block is one segment of many tokens; a batched decode step is one single-token
    segment per sequence.
    """

    cache: KVCache
    n_tokens: int
