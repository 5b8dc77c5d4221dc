"""Llama 3.x GGUFs carry their long-context rope scaling as a rope_freqs tensor of per-frequency
divisors; applying it must give transformers' "llama3" rope frequencies."""

import math

import numpy as np

from inference.core.gguf_loader import load_stage, read_gguf
from tests.inference.tiny_gguf import N_HEADS, write_tiny_gguf

D_MODEL, ROPE_THETA = 64, 10000.0
SCALING = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


def llama_cpp_rope_factors(head_dim: int) -> np.ndarray:
    """The divisors llama.cpp's converter computes from a Llama 3.1 config (convert_hf_to_gguf.py)."""
    old_context = SCALING["original_max_position_embeddings"]
    low_wavelength = old_context / SCALING["low_freq_factor"]
    high_wavelength = old_context / SCALING["high_freq_factor"]
    factors = []
    for freq in 1.0 / ROPE_THETA ** (np.arange(0, head_dim, 2) / head_dim):
        wavelength = 2 * math.pi / freq
        if wavelength < high_wavelength:
            factors.append(1.0)
        elif wavelength > low_wavelength:
            factors.append(SCALING["factor"])
        else:
            smooth = (old_context / wavelength - SCALING["low_freq_factor"]) / (SCALING["high_freq_factor"] - SCALING["low_freq_factor"])
            factors.append(1 / ((1 - smooth) / SCALING["factor"] + smooth))
    return np.array(factors, dtype=np.float32)


def test_rope_freqs_tensor_gives_transformers_llama3_inverse_frequencies(tmp_path):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    head_dim = D_MODEL // N_HEADS
    factors = llama_cpp_rope_factors(head_dim)
    assert factors.min() == 1.0 and factors.max() == SCALING["factor"]  # the test spans all three regimes
    path = write_tiny_gguf(tmp_path / "llama3.gguf", "llama", rope_factors=factors, d_model=D_MODEL)
    model = read_gguf(path)
    stage = load_stage(model, range(1), with_embedding=False, with_head=False)

    config = LlamaConfig(
        hidden_size=D_MODEL,
        num_attention_heads=N_HEADS,
        max_position_embeddings=131072,
        rope_parameters={"rope_type": "llama3", "rope_theta": ROPE_THETA, **SCALING},
    )
    reference, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    np.testing.assert_allclose(stage.inv_freq, reference.numpy(), rtol=1e-5)


def test_without_rope_freqs_the_plain_rope_frequencies_are_used(tmp_path):
    model = read_gguf(write_tiny_gguf(tmp_path / "plain.gguf", "llama", d_model=D_MODEL))
    stage = load_stage(model, range(1), with_embedding=False, with_head=False)
    head_dim = D_MODEL // N_HEADS
    np.testing.assert_allclose(stage.inv_freq, 1.0 / ROPE_THETA ** (np.arange(0, head_dim, 2) / head_dim), rtol=1e-6)
