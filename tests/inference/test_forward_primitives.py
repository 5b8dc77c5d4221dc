"""rmsnorm, rope and grouped-query attention against direct, slow formulations."""

import math

import numpy as np

from inference.core.forward import ATTENTION_TILE, apply_rope, attention, rms_norm, rope_tables, silu_and_multiply

rng = np.random.default_rng(0)


def test_rms_norm_scales_each_row_to_unit_rms_then_by_weight():
    x = rng.standard_normal((5, 16)).astype(np.float32) * 3  # [T, D]
    weight = rng.standard_normal(16).astype(np.float32)  # [D]
    out = rms_norm(x, weight, eps=1e-6)
    expected = np.stack([row / math.sqrt(np.mean(row.astype(np.float64) ** 2) + 1e-6) * weight for row in x])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_rope_rotates_each_half_pair_by_position_times_frequency():
    head_dim, positions = 8, np.array([0, 1, 7, 300])
    inv_freq = (1.0 / 10000 ** (np.arange(0, head_dim, 2) / head_dim)).astype(np.float32)  # [Dh/2]
    x = rng.standard_normal((4, 3, head_dim)).astype(np.float32)  # [T, H, Dh]
    out = apply_rope(x, *rope_tables(positions, inv_freq))
    half = head_dim // 2
    # pair (i, i + Dh/2) is the complex number x_i + j x_{i+Dh/2}, multiplied by e^{j pos freq_i}
    as_complex = x[..., :half] + 1j * x[..., half:]  # [T, H, Dh/2]
    rotated = as_complex * np.exp(1j * positions[:, None, None] * inv_freq[None, None, :].astype(np.float64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.concatenate([rotated.real, rotated.imag], axis=-1), rtol=1e-4, atol=1e-5)


def test_rope_makes_query_key_products_depend_only_on_relative_position():
    inv_freq = (1.0 / 10000 ** (np.arange(0, 16, 2) / 16)).astype(np.float32)
    q = rng.standard_normal((1, 1, 16)).astype(np.float32)
    k = rng.standard_normal((1, 1, 16)).astype(np.float32)

    def score(query_position, key_position):
        rotated_q = apply_rope(q, *rope_tables(np.array([query_position]), inv_freq))
        rotated_k = apply_rope(k, *rope_tables(np.array([key_position]), inv_freq))
        return float((rotated_q * rotated_k).sum())

    assert math.isclose(score(10, 3), score(107, 100), rel_tol=1e-4)
    assert not math.isclose(score(10, 3), score(10, 4), rel_tol=1e-4)


def naive_attention(q, keys, values, start):
    """Per query head: softmax(q k^T / sqrt(Dh)) v over the causally visible positions."""
    n_tokens, n_heads, head_dim = q.shape
    group = n_heads // keys.shape[0]
    out = np.zeros((n_tokens, n_heads, head_dim))
    for t in range(n_tokens):
        visible = start + t + 1
        for h in range(n_heads):
            k, v = keys[h // group, :visible], values[h // group, :visible]  # query head h reads kv head h // group
            scores = k.astype(np.float64) @ q[t, h] / math.sqrt(head_dim)
            weights = np.exp(scores - scores.max())
            out[t, h] = weights / weights.sum() @ v
    return out.reshape(n_tokens, n_heads * head_dim)


def test_grouped_query_attention_matches_per_head_attention_with_shared_kv_heads():
    n_heads, n_kv_heads, head_dim, start, n_tokens = 6, 2, 8, 5, 4
    q = rng.standard_normal((n_tokens, n_heads, head_dim)).astype(np.float32)  # [T, H, Dh]
    keys = rng.standard_normal((n_kv_heads, start + n_tokens, head_dim)).astype(np.float32)  # [Hkv, t, Dh]
    values = rng.standard_normal((n_kv_heads, start + n_tokens, head_dim)).astype(np.float32)
    out = attention(q, keys, values, start)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, naive_attention(q, keys, values, start), rtol=1e-4, atol=1e-5)


def test_attention_of_a_single_query_sees_every_cached_position():
    q = rng.standard_normal((1, 4, 8)).astype(np.float32)
    keys = rng.standard_normal((2, 9, 8)).astype(np.float32)
    values = rng.standard_normal((2, 9, 8)).astype(np.float32)
    np.testing.assert_allclose(attention(q, keys, values, start=8), naive_attention(q, keys, values, 8), rtol=1e-4, atol=1e-5)


def test_attention_of_a_prefill_block_longer_than_a_tile_matches_per_head_attention():
    n_tokens = 2 * ATTENTION_TILE + 5  # two whole tiles and a partial one, on the prefill threads
    start = 7
    q = rng.standard_normal((n_tokens, 6, 8)).astype(np.float32)  # [T, H, Dh]
    keys = rng.standard_normal((2, start + n_tokens, 8)).astype(np.float32)  # [Hkv, t, Dh]
    values = rng.standard_normal((2, start + n_tokens, 8)).astype(np.float32)
    out = attention(q, keys, values, start)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, naive_attention(q, keys, values, start), rtol=1e-4, atol=1e-5)


def test_silu_and_multiply_of_a_prefill_block_in_slices_matches_the_formula():
    gate_up = rng.standard_normal((2 * ATTENTION_TILE + 5, 2 * 48)).astype(np.float32) * 4  # [T, 2F]
    gate, up = gate_up[:, :48], gate_up[:, 48:]  # the views transformer_block passes
    expected = gate.astype(np.float64) / (1 + np.exp(-gate.astype(np.float64))) * up
    out = silu_and_multiply(gate, up)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
