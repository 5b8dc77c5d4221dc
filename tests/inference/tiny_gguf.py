"""Writing small random-weight GGUF files with gguf.GGUFWriter, for architectures, quant types and
bad files that no small downloadable model covers."""

from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

N_HEADS, N_KV_HEADS, N_LAYERS, VOCAB = 4, 2, 2, 256
# Qwen3 decouples the head size from d_model / N_HEADS (transformers assumes 128 for it).
QWEN3_HEAD_DIM = 128
# K-quants pack 256 values per block, so every matrix's row length must be a multiple of 256.
K_QUANT_DIMS = {"d_model": 256, "ffn_dim": 512}
# Byte offsets of the float16 scales inside one block of each K-quant; the rest of a block is
# small integers, for which any random bytes are valid.
K_QUANT_SCALE_OFFSETS = {
    GGMLQuantizationType.Q2_K: (80, 82),
    GGMLQuantizationType.Q3_K: (108,),
    GGMLQuantizationType.Q4_K: (0, 2),
    GGMLQuantizationType.Q5_K: (0, 2),
    GGMLQuantizationType.Q6_K: (208,),
}


def byte_level_vocabulary() -> list[str]:
    """GPT-2's printable spelling of the 256 byte values, so transformers can build a tokenizer."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    spelled, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            spelled[byte] = chr(byte)
        else:
            spelled[byte] = chr(256 + extra)
            extra += 1
    return [spelled[byte] for byte in range(256)]


def write_tiny_gguf(
    path: Path,
    architecture: str = "llama",
    qtype: GGMLQuantizationType = GGMLQuantizationType.F32,
    tied_head: bool = True,
    rope_factors: np.ndarray | None = None,
    seed: int = 0,
    d_model: int = 64,
    ffn_dim: int = 96,
    undequantizable: str | None = None,
) -> Path:
    """A 2-layer model of `architecture` whose matrices are stored as `qtype`.

    Weights are scaled like a trained model's (unit-RMS activations) so logits span a useful range.
    The matrix named `undequantizable` is stored as Q8_1, a type gguf.quants cannot dequantize.
    """
    rng = np.random.default_rng(seed)
    head_dim = QWEN3_HEAD_DIM if architecture == "qwen3" else d_model // N_HEADS
    writer = GGUFWriter(str(path), architecture)
    writer.add_block_count(N_LAYERS)
    writer.add_context_length(512)
    writer.add_embedding_length(d_model)
    writer.add_feed_forward_length(ffn_dim)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_KV_HEADS)
    writer.add_rope_dimension_count(head_dim)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(VOCAB)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(byte_level_vocabulary())
    writer.add_token_merges([])
    writer.add_eos_token_id(0)

    def matrix(name: str, rows: int, cols: int) -> None:
        if name == undequantizable:
            block_values, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType.Q8_1]
            stored = np.zeros((rows, cols // block_values * block_bytes), dtype=np.uint8)
            writer.add_tensor(name, stored, raw_dtype=GGMLQuantizationType.Q8_1)
            return
        if qtype in K_QUANT_SCALE_OFFSETS:
            stored = random_k_quant_blocks(rng, rows, cols, qtype)  # gguf has no K-quant quantizer
        else:
            stored = quantize((rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32), qtype)
        writer.add_tensor(name, stored, raw_dtype=qtype)

    def vector(name: str, size: int, around: float) -> None:
        writer.add_tensor(name, (around + 0.1 * rng.standard_normal(size)).astype(np.float32))

    matrix("token_embd.weight", VOCAB, d_model)
    for layer in range(N_LAYERS):
        block = f"blk.{layer}"
        vector(f"{block}.attn_norm.weight", d_model, 1.0)
        matrix(f"{block}.attn_q.weight", N_HEADS * head_dim, d_model)
        matrix(f"{block}.attn_k.weight", N_KV_HEADS * head_dim, d_model)
        matrix(f"{block}.attn_v.weight", N_KV_HEADS * head_dim, d_model)
        if architecture == "qwen2":
            vector(f"{block}.attn_q.bias", N_HEADS * head_dim, 0.0)
            vector(f"{block}.attn_k.bias", N_KV_HEADS * head_dim, 0.0)
            vector(f"{block}.attn_v.bias", N_KV_HEADS * head_dim, 0.0)
        if architecture == "qwen3":
            vector(f"{block}.attn_q_norm.weight", head_dim, 1.0)
            vector(f"{block}.attn_k_norm.weight", head_dim, 1.0)
        matrix(f"{block}.attn_output.weight", d_model, N_HEADS * head_dim)
        vector(f"{block}.ffn_norm.weight", d_model, 1.0)
        matrix(f"{block}.ffn_gate.weight", ffn_dim, d_model)
        matrix(f"{block}.ffn_up.weight", ffn_dim, d_model)
        matrix(f"{block}.ffn_down.weight", d_model, ffn_dim)
    vector("output_norm.weight", d_model, 1.0)
    if not tied_head:
        matrix("output.weight", VOCAB, d_model)
    if rope_factors is not None:
        writer.add_tensor("rope_freqs.weight", rope_factors.astype(np.float32))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def random_k_quant_blocks(rng: np.random.Generator, rows: int, cols: int, qtype: GGMLQuantizationType) -> np.ndarray:
    """Random K-quant bytes [rows, cols / 256 * block bytes] whose scales are small finite floats."""
    block_values, block_bytes = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(rows, cols // block_values, block_bytes), dtype=np.uint8)
    for offset in K_QUANT_SCALE_OFFSETS[qtype]:
        scales = (rng.uniform(0.5, 1.0, size=blocks.shape[:2]) * 1e-3 / np.sqrt(cols)).astype(np.float16)
        blocks[:, :, offset : offset + 2] = scales[..., None].view(np.uint8).reshape(*scales.shape, 2)
    return blocks.reshape(rows, -1)
