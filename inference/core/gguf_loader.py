"""Reading a GGUF file: model config, tensor locations, and the quantized weights of a range of layers.

The file is parsed once with gguf's GGUFReader; what we keep from it is small (config, tokenizer
metadata, where each tensor lives). The reader itself is dropped right away because it holds
a Python object per vocabulary entry (~150 MB for a 49k vocabulary) and a memory map of the whole
file. Tensors are then read by byte range, one at a time, so a pipeline stage only ever touches the
bytes of its own layers. Matrices stay in their GGUF blocks (quantized.QuantMatrix, read by the
kernels); only the small vectors (norms, biases, rope factors) become float32.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field, replace

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize, quant_shape_to_byte_shape

from inference.core.quantized import LAYOUTS, SUPPORTED_TYPES, QuantMatrix

SUPPORTED_ARCHITECTURES = ("llama", "qwen2", "qwen3")

# Per-layer tensors that one of the supported architectures may have, by GGUF name suffix.
LAYER_TENSOR_SUFFIXES = (
    "attn_norm.weight",
    "attn_q.weight",
    "attn_k.weight",
    "attn_v.weight",
    "attn_q.bias",
    "attn_k.bias",
    "attn_v.bias",
    "attn_q_norm.weight",
    "attn_k_norm.weight",
    "attn_output.weight",
    "ffn_norm.weight",
    "ffn_gate.weight",
    "ffn_up.weight",
    "ffn_down.weight",
)
EMBEDDING_TENSOR = "token_embd.weight"
FINAL_NORM_TENSOR = "output_norm.weight"
HEAD_TENSOR = "output.weight"
ROPE_FACTORS_TENSOR = "rope_freqs.weight"

FLOAT32_BYTES = 4
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
TOKENIZER_VOCABULARY_KEYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.ggml.scores")


class GGUFError(ValueError):
    """A GGUF file we cannot run; the message is one line naming the file and the reason."""


@dataclass(frozen=True)
class ModelConfig:
    architecture: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    vocab_size: int
    context_length: int
    rope_theta: float
    rms_eps: float
    tied_head: bool


@dataclass(frozen=True)
class TensorInfo:
    name: str
    qtype: GGMLQuantizationType
    shape: tuple[int, ...]  # numpy order: rows first, i.e. GGUF's ne[] reversed
    offset: int  # absolute byte offset in the file
    n_bytes: int


@dataclass(frozen=True)
class GGUFModel:
    path: str
    config: ModelConfig
    tensors: dict[str, TensorInfo]
    metadata: dict = field(repr=False)  # every key-value pair, decoded to Python values


def read_gguf(path: str | os.PathLike) -> GGUFModel:
    """Parse a GGUF's header: config, tokenizer metadata and tensor locations (no tensor data)."""
    path = os.fspath(path)
    reader = _open_reader(path)
    metadata = {key: reader.fields[key].contents() for key in reader.fields if not key.startswith("GGUF.")}
    tensors = {
        tensor.name: TensorInfo(
            name=tensor.name,
            qtype=GGMLQuantizationType(tensor.tensor_type),
            shape=tuple(int(n) for n in reversed(tensor.shape.tolist())),
            offset=int(tensor.data_offset),
            n_bytes=int(tensor.n_bytes),
        )
        for tensor in reader.tensors
    }
    del reader
    _check_not_truncated(path, tensors)
    config = _config_from_metadata(path, metadata, tensors)
    return GGUFModel(path=path, config=config, tensors=tensors, metadata=metadata)


def without_tokenizer_vocabulary(model: GGUFModel) -> GGUFModel:
    """The same model without the tokenizer's vocabulary lists, for once a tokenizer is built."""
    metadata = {key: value for key, value in model.metadata.items() if key not in TOKENIZER_VOCABULARY_KEYS}
    return replace(model, metadata=metadata)


def _open_reader(path: str) -> GGUFReader:
    if not os.path.isfile(path):
        raise GGUFError(f"{path}: no such file")
    try:
        return GGUFReader(path)
    except Exception as error:  # the reader fails with whatever numpy/struct raises on bad bytes
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GGUFError(f"{path}: not a readable GGUF file ({reason})") from None


def _check_not_truncated(path: str, tensors: dict[str, TensorInfo]) -> None:
    file_size = os.path.getsize(path)
    needed = max((t.offset + t.n_bytes for t in tensors.values()), default=0)
    if needed > file_size:
        raise GGUFError(f"{path}: truncated GGUF file ({file_size} bytes, tensor data needs {needed})")


def _config_from_metadata(path: str, metadata: dict, tensors: dict[str, TensorInfo]) -> ModelConfig:
    arch = metadata.get("general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise GGUFError(
            f"{path}: unsupported architecture {arch!r} (supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
        )

    def required(key: str):
        if f"{arch}.{key}" not in metadata:
            raise GGUFError(f"{path}: GGUF metadata lacks {arch}.{key}")
        return metadata[f"{arch}.{key}"]

    d_model = int(required("embedding_length"))
    n_heads = int(required("attention.head_count"))
    embedding = tensors.get(EMBEDDING_TENSOR)
    if embedding is None:
        raise GGUFError(f"{path}: GGUF has no {EMBEDDING_TENSOR} tensor")
    return ModelConfig(
        architecture=arch,
        n_layers=int(required("block_count")),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=int(metadata.get(f"{arch}.attention.head_count_kv", n_heads)),
        head_dim=int(metadata.get(f"{arch}.attention.key_length", d_model // n_heads)),
        ffn_dim=int(required("feed_forward_length")),
        vocab_size=embedding.shape[0],
        context_length=int(metadata.get(f"{arch}.context_length", 2048)),
        rope_theta=float(metadata.get(f"{arch}.rope.freq_base", 10000.0)),
        rms_eps=float(required("attention.layer_norm_rms_epsilon")),
        tied_head=HEAD_TENSOR not in tensors,
    )


# ---------------------------------------------------------------- which tensors a stage needs


def layer_tensor_names(model: GGUFModel, layer: int) -> list[str]:
    return [f"blk.{layer}.{suffix}" for suffix in LAYER_TENSOR_SUFFIXES if f"blk.{layer}.{suffix}" in model.tensors]


def stage_tensor_names(model: GGUFModel, layers: range, with_embedding: bool, with_head: bool) -> list[str]:
    """Tensor names a stage running `layers` needs; the embedding doubles as the head when tied."""
    names = [ROPE_FACTORS_TENSOR] if ROPE_FACTORS_TENSOR in model.tensors else []
    if with_embedding or (with_head and model.config.tied_head):
        names.append(EMBEDDING_TENSOR)
    for layer in layers:
        names += layer_tensor_names(model, layer)
    if with_head:
        names.append(FINAL_NORM_TENSOR)
        if not model.config.tied_head:
            names.append(HEAD_TENSOR)
    return names


def tensor_byte_ranges(
    path: str | os.PathLike, layers: range, with_embedding: bool = False, with_head: bool = False
) -> list[tuple[str, int, int]]:
    """(tensor name, file byte offset, byte length) of every tensor a stage needs, for fetching by range."""
    model = read_gguf(path)
    return [
        (name, model.tensors[name].offset, model.tensors[name].n_bytes)
        for name in stage_tensor_names(model, layers, with_embedding, with_head)
    ]


def layer_memory_bytes(model: GGUFModel, context_length: int) -> list[int]:
    """Bytes each layer occupies at run time: its weights as loaded plus its KV cache at `context_length`."""
    config = model.config
    kv_cache_bytes = 2 * config.n_kv_heads * config.head_dim * context_length * FLOAT32_BYTES
    return [
        sum(resident_bytes(model.tensors[name]) for name in layer_tensor_names(model, layer)) + kv_cache_bytes
        for layer in range(config.n_layers)
    ]


def embedding_and_head_bytes(model: GGUFModel) -> tuple[int, int]:
    """Loaded bytes of (embedding, final norm + head); the head costs only the norm when tied."""
    names = [FINAL_NORM_TENSOR] + ([] if model.config.tied_head else [HEAD_TENSOR])
    head = sum(resident_bytes(model.tensors[name]) for name in names)
    return resident_bytes(model.tensors[EMBEDDING_TENSOR]), head


def resident_bytes(info: TensorInfo) -> int:
    """What a tensor takes once loaded: a vector as float32, a matrix in its repacked quantized blocks."""
    if len(info.shape) == 1 or info.qtype not in SUPPORTED_TYPES:
        return int(np.prod(info.shape)) * FLOAT32_BYTES
    rows, cols = info.shape
    block_size, type_size = GGML_QUANT_SIZES[info.qtype]
    layout = LAYOUTS[info.qtype]
    if not layout.qs:  # F16 / BF16 / F32 rows are kept as they are
        return rows * cols // block_size * type_size
    per_block = 2 * layout.has_d + 2 * layout.has_dmin + layout.scales + layout.qs + layout.qh
    return rows * (cols // block_size) * per_block


# ---------------------------------------------------------------- loading quantized weights


@dataclass(frozen=True)
class LayerWeights:
    """One layer's weights. Each projection is a tuple of matrices whose outputs are concatenated: q, k and v
    (and gate and up) share one kernel call when they share a quant type, as they mostly do."""

    attn_norm: np.ndarray  # [D]
    qkv: tuple[QuantMatrix, ...]  # rows: [(H + 2*Hkv) * Dh] in all, by D columns
    qkv_bias: np.ndarray | None  # [(H + 2*Hkv) * Dh], qwen2
    q_norm: np.ndarray | None  # [Dh], qwen3
    k_norm: np.ndarray | None  # [Dh], qwen3
    attn_out: tuple[QuantMatrix, ...]  # [D, H * Dh]
    ffn_norm: np.ndarray  # [D]
    gate_up: tuple[QuantMatrix, ...]  # rows: [2 * F] in all, by D columns
    down: tuple[QuantMatrix, ...]  # [D, F]


@dataclass(frozen=True)
class StageWeights:
    """Weights of one pipeline stage: layers[i] is model layer layer_range[i]."""

    config: ModelConfig
    layer_range: range
    layers: list[LayerWeights]
    inv_freq: np.ndarray  # [Dh/2] rope inverse frequencies, rope_freqs factors already applied
    embedding: QuantMatrix | None  # [V, D] when this stage embeds tokens (rows looked up one by one)
    final_norm: np.ndarray | None  # [D] when this stage produces logits
    head: tuple[QuantMatrix, ...] | None  # [V, D]; the embedding itself when tied

    def n_bytes(self) -> int:
        matrices = {id(m): m for layer in self.layers for part in (layer.qkv, layer.attn_out, layer.gate_up, layer.down) for m in part}
        matrices.update({id(m): m for m in (self.head or ())})
        if self.embedding is not None:
            matrices[id(self.embedding)] = self.embedding  # counted once when it is also the head
        vectors = [self.inv_freq, self.final_norm]
        vectors += [v for layer in self.layers for v in (layer.attn_norm, layer.qkv_bias, layer.q_norm, layer.k_norm, layer.ffn_norm)]
        return sum(m.nbytes for m in matrices.values()) + sum(v.nbytes for v in vectors if v is not None)


def load_stage(model: GGUFModel, layers: range, with_embedding: bool, with_head: bool) -> StageWeights:
    """Load only the tensors of `layers` (plus embedding and/or head), matrices kept quantized."""
    config = model.config
    if layers.step != 1 or layers.start < 0 or layers.stop > config.n_layers or len(layers) == 0:
        raise ValueError(f"layer range {layers} is not a non-empty slice of 0..{config.n_layers}")
    for name in stage_tensor_names(model, layers, with_embedding, with_head):
        if name not in model.tensors:
            raise GGUFError(f"{model.path}: GGUF has no {name} tensor")
    with open(model.path, "rb") as file:
        needs_embedding = with_embedding or (with_head and config.tied_head)
        embedding = _read_matrix(model, file, EMBEDDING_TENSOR) if needs_embedding else None  # [V, D]
        head = None
        if with_head:
            head = (embedding if config.tied_head else _read_matrix(model, file, HEAD_TENSOR),)  # [V, D]
        loaded_layers = [_load_layer(model, file, layer) for layer in layers]
        final_norm = _read_vector(model, file, FINAL_NORM_TENSOR) if with_head else None
        inv_freq = _rope_inverse_frequencies(model, file)
    _release_freed_memory()
    return StageWeights(
        config=config,
        layer_range=layers,
        layers=loaded_layers,
        inv_freq=inv_freq,
        embedding=embedding if with_embedding else None,
        final_norm=final_norm,
        head=head,
    )


def _load_layer(model: GGUFModel, file, layer: int) -> LayerWeights:
    config = model.config

    def raw(suffix: str) -> tuple[TensorInfo, np.ndarray]:
        return _read_matrix_bytes(model, file, f"blk.{layer}.{suffix}")

    def vector(suffix: str) -> np.ndarray:
        return _read_vector(model, file, f"blk.{layer}.{suffix}")

    def optional(suffix: str) -> np.ndarray | None:
        return vector(suffix) if f"blk.{layer}.{suffix}" in model.tensors else None

    q, k, v = raw("attn_q.weight"), raw("attn_k.weight"), raw("attn_v.weight")  # rows [out, D] each
    if config.architecture == "llama":
        # llama.cpp's converter permutes llama's q/k rows to rotate adjacent pairs; undoing it (on whole rows
        # of blocks, so nothing is dequantized) lets every architecture share the rotate-halves rope, exactly
        # as transformers does on load.
        q = (q[0], _unpermute_rope_rows(q[1], config.n_heads))
        k = (k[0], _unpermute_rope_rows(k[1], config.n_kv_heads))
    biases = [optional("attn_q.bias"), optional("attn_k.bias"), optional("attn_v.bias")]
    return LayerWeights(
        attn_norm=vector("attn_norm.weight"),
        qkv=_stacked_rows(model, [q, k, v]),  # [(H+2Hkv)*Dh, D]
        qkv_bias=np.concatenate(biases) if all(b is not None for b in biases) else None,
        q_norm=optional("attn_q_norm.weight"),
        k_norm=optional("attn_k_norm.weight"),
        attn_out=_stacked_rows(model, [raw("attn_output.weight")]),  # [D, H*Dh]
        ffn_norm=vector("ffn_norm.weight"),
        gate_up=_stacked_rows(model, [raw("ffn_gate.weight"), raw("ffn_up.weight")]),  # [2F, D]
        down=_stacked_rows(model, [raw("ffn_down.weight")]),  # [D, F]
    )


def _stacked_rows(model: GGUFModel, parts: list[tuple[TensorInfo, np.ndarray]]) -> tuple[QuantMatrix, ...]:
    """The matrices' rows one after another: neighbours of one quant type become one matrix (one kernel call)."""
    stacked = []
    run = [parts[0]]
    for part in parts[1:] + [None]:
        if part is not None and part[0].qtype == run[0][0].qtype:
            run.append(part)
            continue
        qtype, cols = run[0][0].qtype, run[0][0].shape[1]
        rows = sum(info.shape[0] for info, _ in run)
        block_bytes = np.concatenate([raw.reshape(info.shape[0], -1) for info, raw in run])  # [rows, row bytes]
        stacked.append(_quant_matrix(model, run[0][0].name, qtype, (rows, cols), block_bytes))
        run = [part]
    return tuple(stacked)


def _release_freed_memory() -> None:
    """Hand the heap pages freed by dequantization back to the OS.

    glibc keeps freed memory for reuse once its adaptive mmap threshold has grown, so without this
    a loaded stage would hold tens of MB of dead dequantization temporaries in its resident set.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _unpermute_rope_rows(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder whole rows (of values or of block bytes) from llama.cpp's interleaved rope order."""
    rows_per_half = rows.shape[0] // n_heads // 2
    # [H*Dh, R] -> [H, Dh/2, 2, R] -> [H, 2, Dh/2, R] -> [H*Dh, R]
    return rows.reshape(n_heads, rows_per_half, 2, -1).swapaxes(1, 2).reshape(rows.shape)


def _rope_inverse_frequencies(model: GGUFModel, file) -> np.ndarray:
    config = model.config
    exponents = np.arange(0, config.head_dim, 2, dtype=np.float64) / config.head_dim  # [Dh/2]
    inv_freq = 1.0 / config.rope_theta**exponents  # [Dh/2]
    if ROPE_FACTORS_TENSOR in model.tensors:
        # Llama 3.x stores its long-context frequency scaling as per-frequency divisors.
        inv_freq = inv_freq / _read_vector(model, file, ROPE_FACTORS_TENSOR).astype(np.float64)  # [Dh/2]
    return inv_freq.astype(np.float32)


def _read_matrix_bytes(model: GGUFModel, file, name: str) -> tuple[TensorInfo, np.ndarray]:
    """A matrix's GGUF block bytes, one row of blocks per row: uint8 [rows, row bytes]."""
    info = model.tensors[name]
    if len(info.shape) != 2:
        raise GGUFError(f"{model.path}: tensor {name} has shape {info.shape}, expected a matrix")
    return info, _read_bytes(model, file, info).reshape(info.shape[0], -1)  # [n_bytes] -> [rows, row bytes]


def _read_matrix(model: GGUFModel, file, name: str) -> QuantMatrix:
    info, block_bytes = _read_matrix_bytes(model, file, name)
    return _quant_matrix(model, name, info.qtype, info.shape, block_bytes)


def _quant_matrix(model: GGUFModel, name: str, qtype, shape: tuple[int, int], block_bytes: np.ndarray) -> QuantMatrix:
    if qtype not in SUPPORTED_TYPES:
        raise GGUFError(f"{model.path}: tensor {name} has type {qtype.name}, which the engine cannot dequantize")
    try:
        return QuantMatrix.from_gguf_bytes(qtype, shape, block_bytes)
    except ValueError as error:
        raise GGUFError(f"{model.path}: tensor {name}: {error}") from None


def _read_vector(model: GGUFModel, file, name: str) -> np.ndarray:
    """A small tensor (norm, bias, rope factors) as float32."""
    info = model.tensors[name]
    raw = _read_bytes(model, file, info)  # [n_bytes]
    try:
        values = dequantize(raw.reshape(quant_shape_to_byte_shape(info.shape, info.qtype)), info.qtype)  # -> [*shape]
    except (NotImplementedError, KeyError):
        raise GGUFError(
            f"{model.path}: tensor {name} has type {info.qtype.name}, which gguf.quants cannot dequantize"
        ) from None
    return np.ascontiguousarray(values.reshape(info.shape), dtype=np.float32)


def _read_bytes(model: GGUFModel, file, info: TensorInfo) -> np.ndarray:
    file.seek(info.offset)
    raw = np.fromfile(file, dtype=np.uint8, count=info.n_bytes)  # [n_bytes]
    if raw.size != info.n_bytes:
        raise GGUFError(f"{model.path}: truncated GGUF file (tensor {info.name} is cut short)")
    return raw
