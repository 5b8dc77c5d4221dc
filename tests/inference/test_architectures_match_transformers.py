"""Every supported architecture and quant type, on tiny random GGUFs, against transformers: with the compiled
kernels and with their pure numpy reference (KOTATSU_KERNELS=numpy)."""

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q

from inference.core.forward import forward
from inference.core.gguf_loader import load_stage, read_gguf
from inference.core.kv_cache import KVCache, Segment
from tests.inference.tiny_gguf import K_QUANT_DIMS, K_QUANT_SCALE_OFFSETS, write_tiny_gguf

QUANT_TYPES = [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]
PROMPT = (np.arange(40) * 37 + 11) % 256  # [T] token ids
DECODE_STEPS = 4  # the last tokens of PROMPT are fed one at a time


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("architecture", ["llama", "qwen2", "qwen3"])
@pytest.mark.parametrize("qtype", QUANT_TYPES, ids=lambda qtype: qtype.name)
def test_logits_agree_with_transformers_for_every_architecture_and_quant_type(tmp_path, monkeypatch, kernels, architecture, qtype):
    monkeypatch.setenv("KOTATSU_KERNELS", kernels)
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    dims = K_QUANT_DIMS if qtype in K_QUANT_SCALE_OFFSETS else {}
    tied_head = qtype.value % 2 == 0  # alternate tied and separate heads across the types
    path = write_tiny_gguf(tmp_path / "tiny.gguf", architecture, qtype, tied_head=tied_head, **dims)

    model = read_gguf(path)
    config = model.config
    assert config.architecture == architecture and config.tied_head == tied_head
    stage = load_stage(model, range(config.n_layers), with_embedding=True, with_head=True)
    cache = KVCache(config.n_layers, config.n_kv_heads, config.head_dim, capacity=64)
    prefill = len(PROMPT) - DECODE_STEPS
    ours = [forward(PROMPT[:prefill], stage, [Segment(cache, prefill)], all_logits=True)]  # [T - steps, V]
    for token in PROMPT[prefill:]:  # then token by token, through the few-rows kernels
        ours.append(forward(np.array([token]), stage, [Segment(cache, 1)]))  # [1, V]
    ours = np.concatenate(ours)  # [T, V]

    reference_model = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="tiny.gguf", dtype=torch.float32)
    with torch.no_grad():
        reference = reference_model(torch.tensor(PROMPT)[None]).logits[0].numpy()  # [T, V]
    assert np.abs(ours - reference).max() <= 1e-3 * (reference.max() - reference.min())
