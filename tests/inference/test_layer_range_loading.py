"""Loading a range of layers: only its tensors are read, stages chain to the single-node result,
and the byte reports the planner and the model cache rely on add up."""

import shutil

import numpy as np

from inference.core.forward import forward
from inference.core.gguf_loader import (
    FLOAT32_BYTES,
    embedding_and_head_bytes,
    layer_memory_bytes,
    load_stage,
    read_gguf,
    stage_tensor_names,
    tensor_byte_ranges,
)
from inference.core.kv_cache import KVCache, Segment

PROMPT = np.array([504, 3575, 282, 4649, 314, 7042, 30, 198, 504, 3575, 282, 8757, 314])  # [T]


def run_stages(stages, config, decode_steps=4):
    """Prefill PROMPT and greedy-decode a few tokens through a chain of stages; logits of every step."""
    caches = [KVCache(len(stage.layer_range), config.n_kv_heads, config.head_dim, 64) for stage in stages]

    def step(inputs):
        for stage, cache in zip(stages, caches):
            inputs = forward(inputs, stage, [Segment(cache, len(inputs))])
        return inputs  # [1, V]

    logits = [step(PROMPT)]
    for _ in range(decode_steps):
        logits.append(step(np.array([np.argmax(logits[-1][0])])))
    return np.concatenate(logits)  # [steps, V]


def test_three_stages_chained_give_the_single_node_logits(smollm2_gguf):
    model = read_gguf(smollm2_gguf)
    config = model.config
    single = [load_stage(model, range(config.n_layers), with_embedding=True, with_head=True)]
    stages = [
        load_stage(model, range(0, 7), with_embedding=True, with_head=False),
        load_stage(model, range(7, 20), with_embedding=False, with_head=False),
        load_stage(model, range(20, config.n_layers), with_embedding=False, with_head=True),
    ]
    assert stages[0].head is None and stages[1].embedding is None and stages[2].embedding is None
    np.testing.assert_array_equal(run_stages(stages, config), run_stages(single, config))


def test_a_stage_reads_none_of_the_bytes_outside_its_layers(tmp_path, smollm2_gguf):
    """Garble every byte a middle stage should not need; it must load exactly the same weights."""
    model = read_gguf(smollm2_gguf)
    layers = range(10, 13)
    wanted = {name for name, _, _ in tensor_byte_ranges(smollm2_gguf, layers)}
    garbled = tmp_path / "garbled.gguf"
    shutil.copy(smollm2_gguf, garbled)
    with open(garbled, "r+b") as file:
        for info in model.tensors.values():
            if info.name not in wanted:
                file.seek(info.offset)
                file.write(b"\xff" * info.n_bytes)  # 0xffff is a NaN float16 scale in every quant type

    clean = load_stage(model, layers, with_embedding=False, with_head=False)
    from_garbled = load_stage(read_gguf(garbled), layers, with_embedding=False, with_head=False)
    for clean_layer, garbled_layer in zip(clean.layers, from_garbled.layers):
        for name, weight in vars(clean_layer).items():
            if weight is not None:
                np.testing.assert_array_equal(values(getattr(garbled_layer, name)), values(weight))
    assert clean.embedding is None and clean.head is None


def values(weight):
    """A vector as it is, a stack of quantized matrices as the float32 values it stands for."""
    if isinstance(weight, np.ndarray):
        return weight
    return np.concatenate([matrix.dequantize_rows(np.arange(matrix.rows)) for matrix in weight])  # [rows, cols]


def test_byte_ranges_list_exactly_the_stage_tensors_as_stored_in_the_file(smollm2_gguf):
    from gguf import GGUFReader

    stored = {t.name: (int(t.data_offset), int(t.n_bytes)) for t in GGUFReader(smollm2_gguf).tensors}
    middle = tensor_byte_ranges(smollm2_gguf, range(3, 5))
    assert {name.split(".")[1] for name, _, _ in middle} == {"3", "4"}
    assert len(middle) == 2 * 9  # norms, q, k, v, output, gate, up, down per llama layer
    first = {name for name, _, _ in tensor_byte_ranges(smollm2_gguf, range(0, 1), with_embedding=True)}
    last_ranges = tensor_byte_ranges(smollm2_gguf, range(29, 30), with_head=True)
    last = {name for name, _, _ in last_ranges}
    assert "token_embd.weight" in first and "output_norm.weight" not in first
    assert {"output_norm.weight", "token_embd.weight"} <= last  # SmolLM2's head is tied to the embedding
    for name, offset, length in middle + last_ranges:
        assert stored[name] == (offset, length)


def test_layer_memory_is_quantized_weights_plus_kv_cache_and_matches_what_loading_allocates(smollm2_gguf):
    model = read_gguf(smollm2_gguf)
    config = model.config
    per_layer = layer_memory_bytes(model, context_length=2048)
    kv_cache = 2 * config.n_kv_heads * config.head_dim * 2048 * FLOAT32_BYTES
    stage = load_stage(model, range(4, 6), with_embedding=False, with_head=False)
    assert len(per_layer) == config.n_layers
    assert per_layer[4] + per_layer[5] - 2 * kv_cache == stage.n_bytes() - stage.inv_freq.nbytes
    assert stage.n_bytes() < 1.01 * sum(model.tensors[name].n_bytes for name in stage_tensor_names(model, range(4, 6), False, False))
    embedding, head = embedding_and_head_bytes(model)
    assert embedding == model.tensors["token_embd.weight"].n_bytes  # Q8_0 rows, as stored
    assert head == config.d_model * FLOAT32_BYTES  # tied: only the final norm is extra
