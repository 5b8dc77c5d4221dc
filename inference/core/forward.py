"""The transformer forward pass as pure functions of (activations, weights).

One function, `forward`, runs any contiguous range of layers: a stage holding the embedding takes
token ids, any other stage takes hidden states; a stage holding the head returns logits, any
other returns hidden states. Single-node inference is the stage that covers every layer.

Rows of the activations may belong to several sequences (see kv_cache.Segment): the projections
and MLP run as one matmul over all rows, only attention is done per sequence (a decode step's sequences
in one compiled call: decode_attention). Everything stays float32: a float64 scalar in an expression
would silently promote and slow every later matmul.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from inference.core.gguf_loader import LayerWeights, ModelConfig, StageWeights
from inference.core import kernels
from inference.core.decode_attention import DecodeCaches
from inference.core.kernels import matmul
from inference.core.kv_cache import Segment
from inference.core.quantized import QuantMatrix


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    if x.ndim == 2 and len(x) == 1:
        # A decode step's single row: its scale as a Python float costs one numpy call instead of five.
        row = x[0]  # [D]
        scale = 1.0 / math.sqrt(float(np.dot(row, row)) / len(row) + eps)
        return x * (weight * scale)  # [1, D]
    sum_squares = np.vecdot(x, x)[..., None]  # [..., D] -> [..., 1]
    return (x * weight) * (1.0 / np.sqrt(sum_squares * (1.0 / x.shape[-1]) + eps))  # [..., D]


def linear(x: np.ndarray, weight: tuple[QuantMatrix, ...]) -> np.ndarray:
    """x @ W.T for W stored as row blocks of quantized matrices (see gguf_loader.LayerWeights)."""
    if len(weight) == 1:
        return matmul(x, weight[0])  # [T, I] @ [I, O] -> [T, O]
    return np.concatenate([matmul(x, part) for part in weight], axis=1)  # [T, I] @ [I, O_i] -> [T, sum O_i]


def rope_tables(positions: np.ndarray, inv_freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and signed sin of every position's angles, full head width, for `apply_rope`."""
    # Angles in float64: position * frequency loses digits in float32 at long contexts.
    angles = positions.astype(np.float64)[:, None] * inv_freq.astype(np.float64)[None, :]  # [T], [Dh/2] -> [T, Dh/2]
    cos, sin = np.cos(angles), np.sin(angles)  # [T, Dh/2] each
    cos_full = np.concatenate([cos, cos], axis=-1)[:, None, :].astype(np.float32)  # [T, 1, Dh]
    sin_signed = np.concatenate([-sin, sin], axis=-1)[:, None, :].astype(np.float32)  # [T, 1, Dh]
    return cos_full, sin_signed


def apply_rope(x: np.ndarray, cos_full: np.ndarray, sin_signed: np.ndarray) -> np.ndarray:
    """Rotate pairs (i, i + Dh/2) of every head by its position's angles (the "rotate half" form):
    (a, b) -> (a cos - b sin, b cos + a sin), computed as x * cos + swap_halves(x) * signed sin."""
    half = x.shape[-1] // 2
    swapped = np.concatenate([x[..., half:], x[..., :half]], axis=-1)  # [T, H, Dh], halves exchanged
    return x * cos_full + swapped * sin_signed  # [T, H, Dh]


# Queries of a prefill block are attended in tiles of this many, spread over the kernels' threads: a tile reads
# only the positions its last query sees, so the masked half of a causal block is mostly never computed.
ATTENTION_TILE = 64  # also the rows of a slice of silu_and_multiply


def silu_and_multiply(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """silu(gate) * up: prefill runs it over [T, F] blocks of several MB, in slices of rows on the prefill threads
    (numpy's ufuncs release the GIL)."""
    out = np.empty(gate.shape, dtype=np.float32)  # [T, F]
    if len(gate) <= ATTENTION_TILE:
        silu_and_multiply_into(gate, up, out)
        return out

    def rows(first: int) -> None:
        last = first + ATTENTION_TILE
        silu_and_multiply_into(gate[first:last], up[first:last], out[first:last])  # [t, F] each

    list(kernels.PANEL_POOL.map(rows, range(0, len(gate), ATTENTION_TILE)))
    return out  # [T, F]


def silu_and_multiply_into(gate: np.ndarray, up: np.ndarray, out: np.ndarray) -> None:
    # sigmoid via tanh never overflows, unlike 1 / (1 + exp(-x)) for large negative x
    np.multiply(gate, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    out *= gate
    out *= up


def attention(q: np.ndarray, keys: np.ndarray, values: np.ndarray, start: int) -> np.ndarray:
    """Causal grouped-query attention of T new queries over all `t = start + T` cached positions."""
    n_tokens = q.shape[0]
    if n_tokens <= ATTENTION_TILE:
        return attention_tile(q, keys, values, start)
    out = np.empty((n_tokens, q.shape[1] * q.shape[2]), dtype=np.float32)  # [T, H*Dh]

    def tile(first: int) -> None:
        last = min(n_tokens, first + ATTENTION_TILE)
        seen = start + last  # positions the tile's last query sees
        out[first:last] = attention_tile(q[first:last], keys[:, :seen], values[:, :seen], start + first)

    # numpy's matmul, exp and sums release the GIL: the tiles run in parallel on the prefill threads.
    list(kernels.PANEL_POOL.map(tile, range(0, n_tokens, ATTENTION_TILE)))
    return out


def attention_tile(q: np.ndarray, keys: np.ndarray, values: np.ndarray, start: int) -> np.ndarray:
    """attention of queries at positions start.. over all their `t = start + T` positions, on the calling thread.

    The G query heads that share a kv head are stacked into one matrix, so each kv head's keys are
    read once by a single matmul instead of G times. The softmax is normalized after the product
    with the values, which divides [.., Dh] instead of [.., t] numbers.
    """
    n_tokens, n_heads, head_dim = q.shape
    n_kv_heads, n_positions, _ = keys.shape
    group = n_heads // n_kv_heads
    q = q * (1.0 / math.sqrt(head_dim))  # [T, H, Dh]
    q = q.reshape(n_tokens, n_kv_heads, group, head_dim).transpose(1, 2, 0, 3)  # [T, H, Dh] -> [Hkv, G, T, Dh]
    q = q.reshape(n_kv_heads, group * n_tokens, head_dim)  # [Hkv, G, T, Dh] -> [Hkv, G*T, Dh]
    scores = q @ keys.transpose(0, 2, 1)  # [Hkv, G*T, Dh] @ [Hkv, Dh, t] -> [Hkv, G*T, t]
    if n_tokens > 1:
        future = np.triu(np.full((n_tokens, n_positions), -np.inf, dtype=np.float32), k=start + 1)  # [T, t]
        scores = scores.reshape(n_kv_heads, group, n_tokens, n_positions)  # [Hkv, G*T, t] -> [Hkv, G, T, t]
        scores += future
        scores = scores.reshape(n_kv_heads, group * n_tokens, n_positions)  # [Hkv, G, T, t] -> [Hkv, G*T, t]
    scores -= scores.max(axis=-1, keepdims=True)  # [Hkv, G*T, t]
    weights = np.exp(scores, out=scores)  # [Hkv, G*T, t], unnormalized
    out = weights @ values  # [Hkv, G*T, t] @ [Hkv, t, Dh] -> [Hkv, G*T, Dh]
    out /= weights.sum(axis=-1, keepdims=True)  # [Hkv, G*T, Dh]
    out = out.reshape(n_kv_heads, group, n_tokens, head_dim).transpose(2, 0, 1, 3)  # -> [T, Hkv, G, Dh]
    return out.reshape(n_tokens, n_heads * head_dim)  # [T, Hkv, G, Dh] -> [T, H*Dh]


def cached_attention(segments: list[Segment], layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each segment's rows of k and v [T, Hkv, Dh] stored at its cache's next positions of `layer`, and the
    attention of its rows of q [T, H, Dh] over its cache: [T, H*Dh]. (decode_attention does a decode step's
    sequences in one compiled call.)"""
    mixed = np.empty((q.shape[0], q.shape[1] * q.shape[2]), dtype=np.float32)  # [T, H*Dh]
    row = 0
    for segment in segments:
        keys, values = segment.cache.keys[layer], segment.cache.values[layer]  # [Hkv, C, Dh] each
        rows = slice(row, row + segment.n_tokens)
        start, stop = segment.cache.length, segment.cache.length + segment.n_tokens
        keys[:, start:stop] = k[rows].transpose(1, 0, 2)  # [T_s, Hkv, Dh] -> [Hkv, T_s, Dh]
        values[:, start:stop] = v[rows].transpose(1, 0, 2)  # [T_s, Hkv, Dh] -> [Hkv, T_s, Dh]
        mixed[rows] = attention(q[rows], keys[:, :stop], values[:, :stop], start)  # [T_s, H*Dh]
        row += segment.n_tokens
    return mixed


def transformer_block(
    x: np.ndarray,
    layer: LayerWeights,
    config: ModelConfig,
    cos: np.ndarray,
    sin: np.ndarray,
    attend: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """One pre-norm block; attend(q, k, v) stores the new keys and values in the rows' caches and returns their
    attention [T, H*Dh]."""
    n_rows = x.shape[0]
    n_heads, n_kv_heads, head_dim = config.n_heads, config.n_kv_heads, config.head_dim

    h = rms_norm(x, layer.attn_norm, config.rms_eps)  # [T, D]
    qkv = linear(h, layer.qkv)  # [T, D] @ [D, (H+2Hkv)*Dh] -> [T, (H+2Hkv)*Dh]
    if layer.qkv_bias is not None:
        qkv += layer.qkv_bias
    # q and k share one rope call: they are the first H + Hkv heads of the fused projection.
    qk = qkv[:, : (n_heads + n_kv_heads) * head_dim].reshape(n_rows, n_heads + n_kv_heads, head_dim)  # [T, H+Hkv, Dh]
    v = qkv[:, (n_heads + n_kv_heads) * head_dim :].reshape(n_rows, n_kv_heads, head_dim)  # -> [T, Hkv, Dh]
    if layer.q_norm is not None:
        q_normed = rms_norm(qk[:, :n_heads], layer.q_norm, config.rms_eps)  # [T, H, Dh]
        k_normed = rms_norm(qk[:, n_heads:], layer.k_norm, config.rms_eps)  # [T, Hkv, Dh]
        qk = np.concatenate([q_normed, k_normed], axis=1)  # [T, H+Hkv, Dh]
    qk = apply_rope(qk, cos, sin)  # [T, H+Hkv, Dh]
    q, k = qk[:, :n_heads], qk[:, n_heads:]  # [T, H, Dh], [T, Hkv, Dh]

    mixed = attend(q, k, v)  # [T, H*Dh]
    x = x + linear(mixed, layer.attn_out)  # [T, H*Dh] @ [H*Dh, D] -> [T, D]

    h = rms_norm(x, layer.ffn_norm, config.rms_eps)  # [T, D]
    gate_up = linear(h, layer.gate_up)  # [T, D] @ [D, 2F] -> [T, 2F]
    gated = silu_and_multiply(gate_up[:, : config.ffn_dim], gate_up[:, config.ffn_dim :])  # [T, 2F] -> [T, F]
    return x + linear(gated, layer.down)  # [T, F] @ [F, D] -> [T, D]


def forward(
    inputs: np.ndarray, stage: StageWeights, segments: list[Segment], all_logits: bool = False
) -> np.ndarray:
    """Run the stage's layers over `inputs`, appending to each segment's KV cache.

    inputs: token ids [T] if the stage embeds, else hidden states [T, D].
    Returns hidden states [T, D] if the stage has no head; otherwise logits of the last row of
    each segment [S, V] (or of every row [T, V] with all_logits).
    """
    config = stage.config
    if sum(segment.n_tokens for segment in segments) != len(inputs):
        raise ValueError("segments must cover exactly the rows of inputs")
    for segment in segments:
        if segment.cache.length + segment.n_tokens > segment.cache.capacity:
            raise ValueError(f"KV cache full: {segment.cache.length} + {segment.n_tokens} > {segment.cache.capacity}")

    x = stage.embedding.dequantize_rows(inputs) if stage.embedding is not None else inputs  # [T] -> [T, D]
    positions = np.concatenate(
        [np.arange(s.cache.length, s.cache.length + s.n_tokens) for s in segments]
    )  # [T]
    cos, sin = rope_tables(positions, stage.inv_freq)  # [T, 1, Dh] each
    decode_caches = DecodeCaches(segments) if DecodeCaches.fits(segments) else None
    for index, layer in enumerate(stage.layers):
        if decode_caches is not None:
            attend = functools.partial(decode_caches.attend, index)
        else:
            attend = functools.partial(cached_attention, segments, index)
        x = transformer_block(x, layer, config, cos, sin, attend)  # [T, D]
    for segment in segments:
        segment.cache.length += segment.n_tokens

    if stage.head is None:
        return x
    if not all_logits:
        last_rows = np.cumsum([segment.n_tokens for segment in segments]) - 1  # [S]
        x = x[last_rows]  # [T, D] -> [S, D]
    x = rms_norm(x, stage.final_norm, config.rms_eps)  # [R, D]
    return linear(x, stage.head)  # [R, D] @ [D, V] -> [R, V]
