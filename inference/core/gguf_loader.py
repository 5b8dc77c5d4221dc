"""Reading a GGUF file: model config, tensor locations, and fp32 weights for a range of layers.

The file is parsed once with gguf's GGUFReader; what we keep from it is small (config, tokenizer
metadata, where each tensor lives). The reader itself is dropped right away because it holds
a Python object per vocabulary entry (~150 MB for a 49k vocabulary) and a memory map of the whole
file. Tensors are then read by byte range and dequantized one at a time with gguf.quants, so a
pipeline stage only ever touches the bytes of its own layers.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field, replace

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize, quant_shape_to_byte_shape

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
    """Bytes each layer occupies at run time: fp32 weights plus its KV cache at `context_length`."""
    config = model.config
    kv_cache_bytes = 2 * config.n_kv_heads * config.head_dim * context_length * FLOAT32_BYTES
    return [
        sum(int(np.prod(model.tensors[name].shape)) * FLOAT32_BYTES for name in layer_tensor_names(model, layer))
        + kv_cache_bytes
        for layer in range(config.n_layers)
    ]


def embedding_and_head_bytes(model: GGUFModel) -> tuple[int, int]:
    """fp32 bytes of (embedding, final norm + head); the head costs only the norm when tied."""
    names = [FINAL_NORM_TENSOR] + ([] if model.config.tied_head else [HEAD_TENSOR])
    head = sum(int(np.prod(model.tensors[n].shape)) * FLOAT32_BYTES for n in names)
    return int(np.prod(model.tensors[EMBEDDING_TENSOR].shape)) * FLOAT32_BYTES, head


# ---------------------------------------------------------------- loading fp32 weights


@dataclass(frozen=True)
class LayerWeights:
    attn_norm: np.ndarray  # [D]
    qkv: np.ndarray  # [D, (H + 2*Hkv) * Dh], fused so one matmul projects q, k and v
    qkv_bias: np.ndarray | None  # [(H + 2*Hkv) * Dh], qwen2
    q_norm: np.ndarray | None  # [Dh], qwen3
    k_norm: np.ndarray | None  # [Dh], qwen3
    attn_out: np.ndarray  # [H * Dh, D]
    ffn_norm: np.ndarray  # [D]
    gate_up: np.ndarray  # [D, 2 * F], fused gate and up projections
    down: np.ndarray  # [F, D], a column-major view (see _load_layer)


@dataclass(frozen=True)
class StageWeights:
    """Weights of one pipeline stage: layers[i] is model layer layer_range[i]."""

    config: ModelConfig
    layer_range: range
    layers: list[LayerWeights]
    inv_freq: np.ndarray  # [Dh/2] rope inverse frequencies, rope_freqs factors already applied
    embedding: np.ndarray | None  # [V, D] when this stage embeds tokens; a view of `head` when tied
    final_norm: np.ndarray | None  # [D] when this stage produces logits
    # [D, V] row-major: OpenBLAS's gemv streams this layout at ~34 GB/s against ~27 GB/s for the
    # [V, D] one, and the head is the largest matrix a decode step reads.
    head: np.ndarray | None

    def n_bytes(self) -> int:
        arrays = [self.inv_freq, self.final_norm, self.head]
        arrays += [self.embedding] if not np.may_share_memory(self.embedding, self.head) else []
        arrays += [a for layer in self.layers for a in vars(layer).values()]
        return sum(a.nbytes for a in arrays if a is not None)


class WeightArena:
    """One allocation that holds every fp32 weight of a stage, filled tensor by tensor.

    numpy asks the kernel for transparent huge pages on allocations this large; gemv over weights in
    2 MB pages ran 5-10% faster than over separately allocated matrices of SmolLM2's shapes (fewer TLB
    misses), and small matrices allocated one by one end up in 4 KB heap pages.
    """

    ALIGNMENT = 16  # floats: every tensor starts on a 64-byte cache line

    def __init__(self, n_floats: int):
        self.buffer = np.empty(n_floats, dtype=np.float32)  # [N]
        self.used = 0

    @classmethod
    def floats_for(cls, shapes) -> int:
        return sum(-(-int(np.prod(shape)) // cls.ALIGNMENT) * cls.ALIGNMENT for shape in shapes)

    def place(self, values: np.ndarray) -> np.ndarray:
        """A row-major copy of `values` (any memory layout) inside the arena."""
        n_floats = values.size
        if self.used + n_floats > self.buffer.size:
            raise ValueError(f"weight arena overflow: {self.used} + {n_floats} > {self.buffer.size} floats")
        placed = self.buffer[self.used : self.used + n_floats].reshape(values.shape)
        placed[...] = values
        self.used += -(-n_floats // self.ALIGNMENT) * self.ALIGNMENT
        return placed


def load_stage(model: GGUFModel, layers: range, with_embedding: bool, with_head: bool) -> StageWeights:
    """Dequantize only the tensors of `layers` (plus embedding and/or head) into fp32."""
    config = model.config
    if layers.step != 1 or layers.start < 0 or layers.stop > config.n_layers or len(layers) == 0:
        raise ValueError(f"layer range {layers} is not a non-empty slice of 0..{config.n_layers}")
    kept = [name for name in stage_tensor_names(model, layers, with_embedding, with_head) if name != ROPE_FACTORS_TENSOR]
    for name in kept:
        if name not in model.tensors:
            raise GGUFError(f"{model.path}: GGUF has no {name} tensor")
    # A tied embedding is kept once, as the head; the arena's size counts it once too.
    arena = WeightArena(WeightArena.floats_for(model.tensors[name].shape for name in kept))
    with open(model.path, "rb") as file:
        needs_embedding = with_embedding or (with_head and config.tied_head)
        embedding = _read_tensor(model, file, EMBEDDING_TENSOR) if needs_embedding else None  # [V, D]
        head = None
        if with_head:
            head_rows = embedding if config.tied_head else _read_tensor(model, file, HEAD_TENSOR)  # [V, D]
            head = arena.place(head_rows.T)  # [V, D] -> [D, V]
            del head_rows
        if with_head and config.tied_head:  # the embedding is kept, if at all, as a view of the head's memory
            embedding = head.T if with_embedding else None  # [D, V] -> [V, D]
        elif with_embedding:
            embedding = arena.place(embedding)  # [V, D]
        _release_freed_memory()
        loaded_layers = []
        for layer in layers:
            loaded_layers.append(_load_layer(model, file, layer, arena))
            _release_freed_memory()
        final_norm = arena.place(_read_tensor(model, file, FINAL_NORM_TENSOR)) if with_head else None
        inv_freq = _rope_inverse_frequencies(model, file)
    return StageWeights(
        config=config,
        layer_range=layers,
        layers=loaded_layers,
        inv_freq=inv_freq,
        embedding=embedding,
        final_norm=final_norm,
        head=head,
    )


def _load_layer(model: GGUFModel, file, layer: int, arena: WeightArena) -> LayerWeights:
    config = model.config

    def tensor(suffix: str) -> np.ndarray:
        return _read_tensor(model, file, f"blk.{layer}.{suffix}")

    def optional(suffix: str) -> np.ndarray | None:
        return tensor(suffix) if f"blk.{layer}.{suffix}" in model.tensors else None

    def placed(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else arena.place(values)

    q, k, v = tensor("attn_q.weight"), tensor("attn_k.weight"), tensor("attn_v.weight")  # [out, D] each
    if config.architecture == "llama":
        # llama.cpp's converter permutes llama's q/k rows to rotate adjacent pairs; undoing it lets
        # every architecture share the rotate-halves rope, exactly as transformers does on load.
        q = _unpermute_rope_rows(q, config.n_heads)
        k = _unpermute_rope_rows(k, config.n_kv_heads)
    biases = [optional("attn_q.bias"), optional("attn_k.bias"), optional("attn_v.bias")]
    return LayerWeights(
        attn_norm=arena.place(tensor("attn_norm.weight")),
        qkv=arena.place(np.concatenate([q, k, v]).T),  # [(H+2Hkv)*Dh, D] -> [D, (H+2Hkv)*Dh]
        qkv_bias=placed(np.concatenate(biases)) if all(b is not None for b in biases) else None,
        q_norm=placed(optional("attn_q_norm.weight")),
        k_norm=placed(optional("attn_k_norm.weight")),
        attn_out=arena.place(tensor("attn_output.weight").T),  # [D, H*Dh] -> [H*Dh, D]
        ffn_norm=arena.place(tensor("ffn_norm.weight")),
        gate_up=arena.place(np.concatenate([tensor("ffn_gate.weight"), tensor("ffn_up.weight")]).T),  # [2F, D] -> [D, 2F]
        # A transposed view, not a copy: OpenBLAS's gemv streams a [D, F] row-major matrix at nearly
        # twice the bandwidth of the [F, D] one (measured: 112 vs 194 us for SmolLM2's shape).
        down=arena.place(tensor("ffn_down.weight")).T,  # [D, F] -> [F, D]
    )


def _release_freed_memory() -> None:
    """Hand the heap pages freed by dequantization back to the OS.

    glibc keeps freed memory for reuse once its adaptive mmap threshold has grown, so without this
    a loaded stage would hold tens of MB of dead dequantization temporaries in its resident set.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _unpermute_rope_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    rows_per_half = weight.shape[0] // n_heads // 2
    # [H*Dh, D] -> [H, Dh/2, 2, D] -> [H, 2, Dh/2, D] -> [H*Dh, D]
    return weight.reshape(n_heads, rows_per_half, 2, -1).swapaxes(1, 2).reshape(weight.shape)


def _rope_inverse_frequencies(model: GGUFModel, file) -> np.ndarray:
    config = model.config
    exponents = np.arange(0, config.head_dim, 2, dtype=np.float64) / config.head_dim  # [Dh/2]
    inv_freq = 1.0 / config.rope_theta**exponents  # [Dh/2]
    if ROPE_FACTORS_TENSOR in model.tensors:
        # Llama 3.x stores its long-context frequency scaling as per-frequency divisors.
        inv_freq = inv_freq / _read_tensor(model, file, ROPE_FACTORS_TENSOR).astype(np.float64)  # [Dh/2]
    return inv_freq.astype(np.float32)


def _read_tensor(model: GGUFModel, file, name: str) -> np.ndarray:
    if name not in model.tensors:
        raise GGUFError(f"{model.path}: GGUF has no {name} tensor")
    info = model.tensors[name]
    file.seek(info.offset)
    raw = np.frombuffer(file.read(info.n_bytes), dtype=np.uint8)  # [n_bytes]
    if raw.size != info.n_bytes:
        raise GGUFError(f"{model.path}: truncated GGUF file (tensor {name} is cut short)")
    try:
        byte_shape = quant_shape_to_byte_shape(info.shape, info.qtype)
        values = dequantize(raw.reshape(byte_shape), info.qtype)  # [*byte_shape] -> [*shape]
    except (NotImplementedError, KeyError):
        raise GGUFError(
            f"{model.path}: tensor {name} has type {info.qtype.name}, which gguf.quants cannot dequantize"
        ) from None
    return np.ascontiguousarray(values.reshape(info.shape), dtype=np.float32)
