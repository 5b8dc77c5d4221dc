"""A decode step's attention (one new token per sequence) runs as one compiled call per layer for every sequence;
it stores the same keys and values and returns the same attention as the numpy path prompts take."""
import numpy as np
import pytest

from inference.core import decode_attention
from inference.core.decode_attention import DecodeCaches, decode_attention_here, decode_attention_threads
from inference.core.forward import cached_attention
from inference.core.kv_cache import KVCache, Segment

N_LAYERS, HEAD_DIM = 3, 64


def filled_cache(rng, n_kv_heads, capacity, length):
    cache = KVCache(N_LAYERS, n_kv_heads, HEAD_DIM, capacity)
    cache.keys[:, :, :length] = rng.standard_normal((N_LAYERS, n_kv_heads, length, HEAD_DIM))
    cache.values[:, :, :length] = rng.standard_normal((N_LAYERS, n_kv_heads, length, HEAD_DIM))
    cache.length = length
    return cache


def copied(cache):
    twin = KVCache(N_LAYERS, cache.keys.shape[1], HEAD_DIM, cache.capacity)
    twin.keys[:], twin.values[:], twin.length = cache.keys, cache.values, cache.length
    return twin


@pytest.mark.parametrize("n_heads, n_kv_heads", [(9, 3), (12, 2), (4, 4)])
@pytest.mark.parametrize("lengths", [[0], [17], [5, 0, 300, 63, 64, 1, 2, 1000]])
def test_a_decode_step_attends_like_the_numpy_path(n_heads, n_kv_heads, lengths):
    rng = np.random.default_rng(len(lengths) * 100 + n_heads)
    caches = [filled_cache(rng, n_kv_heads, capacity, length)
              for capacity, length in zip([1024, 512, 2048, 64, 128, 32, 16, 1001], lengths)]
    twins = [copied(cache) for cache in caches]
    q = rng.standard_normal((len(lengths), n_heads, HEAD_DIM)).astype(np.float32)  # [S, H, Dh]
    k = rng.standard_normal((len(lengths), n_kv_heads, HEAD_DIM)).astype(np.float32)  # [S, Hkv, Dh]
    v = rng.standard_normal((len(lengths), n_kv_heads, HEAD_DIM)).astype(np.float32)  # [S, Hkv, Dh]
    segments = [Segment(cache, 1) for cache in caches]
    assert DecodeCaches.fits(segments)

    for layer in range(N_LAYERS):
        compiled = DecodeCaches(segments).attend(layer, q, k, v)  # [S, H*Dh]
        reference = cached_attention([Segment(twin, 1) for twin in twins], layer, q, k, v)  # [S, H*Dh]
        np.testing.assert_allclose(compiled, reference, rtol=2e-5, atol=2e-6)
    for cache, twin in zip(caches, twins):
        np.testing.assert_array_equal(cache.keys, twin.keys)
        np.testing.assert_array_equal(cache.values, twin.values)


def test_a_prompt_block_and_the_numpy_kernels_take_the_numpy_path(monkeypatch):
    cache = KVCache(N_LAYERS, 2, HEAD_DIM, 64)
    assert not DecodeCaches.fits([Segment(cache, 1), Segment(cache, 5)])
    monkeypatch.setenv("KOTATSU_KERNELS", "numpy")
    assert not DecodeCaches.fits([Segment(cache, 1)])


@pytest.mark.parametrize("kernel", [decode_attention_threads, decode_attention_here])
def test_the_threaded_and_the_single_thread_kernels_attend_alike(kernel, monkeypatch):
    rng = np.random.default_rng(7)
    caches = [filled_cache(rng, 2, 256, length) for length in (3, 200)]
    twins = [copied(cache) for cache in caches]
    q = rng.standard_normal((2, 8, HEAD_DIM)).astype(np.float32)  # [S, H, Dh]
    k, v = rng.standard_normal((2, 2, 2, HEAD_DIM)).astype(np.float32)  # [S, Hkv, Dh] each
    chosen = []
    monkeypatch.setattr(decode_attention, "decode_attention_threads", lambda *args: chosen.append(kernel) or kernel(*args))
    monkeypatch.setattr(decode_attention, "decode_attention_here", lambda *args: chosen.append(kernel) or kernel(*args))
    compiled = DecodeCaches([Segment(cache, 1) for cache in caches]).attend(1, q, k, v)  # [S, H*Dh]
    reference = cached_attention([Segment(twin, 1) for twin in twins], 1, q, k, v)  # [S, H*Dh]
    assert chosen == [kernel]
    np.testing.assert_allclose(compiled, reference, rtol=2e-5, atol=2e-6)
