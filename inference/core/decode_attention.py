"""Attention of a decode step, compiled: one call per layer for every sequence of the step.

A decode step gives each sequence one new token. Done in numpy, that is a dozen small calls per sequence per
layer (the cache writes, the score matmul, the softmax, the product with the values: ~11 us for SmolLM2 at 20
positions, of which the arithmetic is a small part), so 8 sequences spend 30 layers x 8 x 12 calls on overhead.
Here one compiled call per layer writes every sequence's new key and value into its cache and attends over
it, spread over the kernels' threads by (sequence, kv head).

Each sequence's KVCache is its own array, so the kernel receives the caches by address (their data pointers,
taken once per forward call; the caller keeps the caches alive) and views each as [L, Hkv, C, Dh].
forward.cached_attention is the reference (selected with KOTATSU_KERNELS=numpy) and the path for prompts.
"""

from __future__ import annotations

import math
import time

import numpy as np

from inference.core import kernels  # sets numba's cache directory before numba's first import
from inference.core import simd
from inference.core.kv_cache import KVCache, Segment

import numba  # noqa: E402  (after kernels)
from numba import njit, prange, types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.extending import intrinsic  # noqa: E402


LANES = 16  # floats in a simd.F32x16
# Waking the kernels' other threads costs about as much as attending 4096 positions x query heads of 64 floats on
# this one (~8 ns each, measured): one short sequence is attended on the calling thread, a long or batched step on all.
THREADED_WORK = 4096 * 64
store_f32 = simd.vector_storer(simd.F32x16)


@intrinsic
def address_pointer(typingctx, address):
    """A void pointer to the memory at an integer address (an array's data pointer taken in Python)."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


@njit(fastmath=True, **kernels.COMPILE)
def attend_kv_head(queries, keys, values, n_positions, scale, out):
    """out [G, Dh] = softmax(scale * queries [G, Dh] . keys[:n]) @ values[:n] for the G query heads of one kv head;
    keys, values [C, Dh], Dh a multiple of 16: every step is on 16-float vectors."""
    group, head_dim = queries.shape
    scores = np.empty((group, n_positions), np.float32)  # [G, t]
    for p in range(n_positions):  # each key row is read once for the G query heads that share it
        for g in range(group):
            acc = simd.zero_f32()
            for i in range(0, head_dim, LANES):
                acc = simd.add_multiple(acc, simd.load_f32(queries, g * head_dim + i), simd.load_f32(keys, p * head_dim + i))
            scores[g, p] = simd.lane_sum(acc) * scale
    for g in range(group):
        largest = scores[g].max()
        total = np.float32(0.0)
        for p in range(n_positions):
            weight = np.float32(math.exp(scores[g, p] - largest))
            scores[g, p] = weight
            total += weight
        for i in range(0, head_dim, LANES):  # one output vector at a time stays in a register
            acc = simd.zero_f32()
            for p in range(n_positions):
                acc = simd.add_f32(acc, simd.times(simd.load_f32(values, p * head_dim + i), scores[g, p]))
            store_f32(out, g * head_dim + i, simd.times(acc, np.float32(1.0) / total))


@njit(fastmath=True, **kernels.COMPILE)
def attend_job(job, q, k_new, v_new, key_addresses, value_addresses, capacities, lengths, layer, n_layers, out):
    """Job (sequence s, kv head) of a decode step: k_new / v_new [S, Hkv, Dh] stored at position lengths[s] of
    layer `layer` of sequence s's cache, and out [S, H, Dh] of that kv head's query heads = their attention
    (q [S, H, Dh]) over positions 0..lengths[s]."""
    n_heads, head_dim = q.shape[1], q.shape[2]
    n_kv_heads = k_new.shape[1]
    group = n_heads // n_kv_heads
    s, kv_head = job // n_kv_heads, job % n_kv_heads
    shape = (n_layers, n_kv_heads, capacities[s], head_dim)
    keys = numba.carray(address_pointer(key_addresses[s]), shape, np.float32)[layer, kv_head]  # [C, Dh]
    values = numba.carray(address_pointer(value_addresses[s]), shape, np.float32)[layer, kv_head]  # [C, Dh]
    position = lengths[s]
    keys[position] = k_new[s, kv_head]  # [Dh]
    values[position] = v_new[s, kv_head]  # [Dh]
    heads = slice(kv_head * group, (kv_head + 1) * group)
    scale = np.float32(1.0 / math.sqrt(head_dim))
    attend_kv_head(q[s, heads], keys, values, position + 1, scale, out[s, heads])  # [G, Dh]


@njit(parallel=True, fastmath=True, **kernels.COMPILE)
def decode_attention_threads(q, k_new, v_new, key_addresses, value_addresses, capacities, lengths, layer, n_layers, out):
    """Every (sequence, kv head) job of the step (see attend_job), spread over the kernels' threads."""
    for job in prange(q.shape[0] * k_new.shape[1]):
        attend_job(job, q, k_new, v_new, key_addresses, value_addresses, capacities, lengths, layer, n_layers, out)


@njit(fastmath=True, **kernels.COMPILE)
def decode_attention_here(q, k_new, v_new, key_addresses, value_addresses, capacities, lengths, layer, n_layers, out):
    """Every (sequence, kv head) job of the step (see attend_job), on the calling thread."""
    for job in range(q.shape[0] * k_new.shape[1]):
        attend_job(job, q, k_new, v_new, key_addresses, value_addresses, capacities, lengths, layer, n_layers, out)


class DecodeCaches:
    """The caches of a decode step's sequences (one new token each), as the kernel takes them."""

    def __init__(self, segments: list[Segment]):
        self.segments = segments  # keeps the caches alive while the kernel reads them by address
        caches = [segment.cache for segment in segments]
        self.key_addresses = np.array([cache.keys.ctypes.data for cache in caches], np.int64)  # [S]
        self.value_addresses = np.array([cache.values.ctypes.data for cache in caches], np.int64)  # [S]
        self.capacities = np.array([cache.capacity for cache in caches], np.int64)  # [S]
        self.lengths = np.array([cache.length for cache in caches], np.int64)  # [S], the new tokens' positions
        self.n_layers = caches[0].keys.shape[0]
        self.positions = int(self.lengths.sum()) + len(caches)  # attended by every query head

    @staticmethod
    def fits(segments: list[Segment]) -> bool:
        """Whether the kernel runs this step: one new token per sequence, compiled kernels chosen, a head size
        of whole vectors."""
        if kernels.use_numpy_kernels() or any(segment.n_tokens != 1 for segment in segments):
            return False
        return segments[0].cache.keys.shape[-1] % LANES == 0  # the kernel's vectors of 16 floats

    def attend(self, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        """q [S, H, Dh], k and v [S, Hkv, Dh] -> [S, H*Dh], the new keys and values stored at layer `layer`."""
        if numba.get_num_threads() != kernels.THREADS:
            numba.set_num_threads(kernels.THREADS)  # per calling thread, as in kernels.matmul
        out = np.empty(q.shape, np.float32)  # [S, H, Dh]
        threaded = self.positions * q.shape[1] * q.shape[2] >= THREADED_WORK
        (decode_attention_threads if threaded else decode_attention_here)(
            np.ascontiguousarray(q), np.ascontiguousarray(k), np.ascontiguousarray(v), self.key_addresses,
            self.value_addresses, self.capacities, self.lengths, layer, self.n_layers, out,
        )
        return out.reshape(q.shape[0], q.shape[1] * q.shape[2])  # [S, H, Dh] -> [S, H*Dh]


def warm_up() -> float:
    """Compile the kernels (or load them from the disk cache), the quantized ones included; seconds taken."""
    started = time.perf_counter()
    kernels.warm_up()
    caches = DecodeCaches([Segment(KVCache(1, 1, LANES, 2), 1)])
    q, k, v = np.zeros((3, 1, 1, LANES), np.float32)  # [1, 1, 16] each
    for kernel in (decode_attention_threads, decode_attention_here):
        out = np.empty(q.shape, np.float32)  # [1, 1, 16]
        kernel(q, k, v, caches.key_addresses, caches.value_addresses, caches.capacities, caches.lengths, 0, 1, out)
    return time.perf_counter() - started
