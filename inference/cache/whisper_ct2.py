"""Convert a CTranslate2 whisper model directory (model.bin + config.json) into an openai-whisper checkpoint.

model.bin layout (CTranslate2 ModelSpec._serialize, binary versions 5 and 6), little endian:
    u32 version, string spec_name, u32 revision, u32 n_variables,
    n_variables x (string name, u8 rank, rank x u32 dim, u8 dtype id, u32 n_bytes, n_bytes data),
    u32 n_aliases, n_aliases x (string alias, string target)
where a string is u16 length (including a trailing NUL), the UTF-8 bytes, then the NUL.
"""
import base64
import gzip
import io
import json
import re
import struct
import threading
from pathlib import Path

import numpy as np

SUPPORTED_BINARY_VERSIONS = (5, 6)
# Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class ConversionError(Exception):
    """A CTranslate2 directory that is not a whisper model we can convert; the message says why."""


def read_ct2_model(path):
    """(spec name, {variable name: numpy array}) of a model.bin, aliases resolved."""
    data = Path(path).read_bytes()
    reader = _Reader(data, path)
    version = reader.unpack("<I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ConversionError(f"{path}: CTranslate2 binary version {version} is not supported ({SUPPORTED_BINARY_VERSIONS})")
    spec_name = reader.string()
    reader.unpack("<I")  # spec revision: the variable names below are what matter
    variables = {}
    for _ in range(reader.unpack("<I")):
        name = reader.string()
        shape = [reader.unpack("<I") for _ in range(reader.unpack("<B"))]
        dtype_id = reader.unpack("<B")
        n_bytes = reader.unpack("<I")
        variables[name] = _to_array(reader.take(n_bytes), dtype_id, shape, name, path)
    for _ in range(reader.unpack("<I")):
        alias, target = reader.string(), reader.string()
        variables[alias] = variables[target]
    return spec_name, variables


class _Reader:
    def __init__(self, data, path):
        self.data, self.path, self.position = data, path, 0

    def take(self, n_bytes):
        if self.position + n_bytes > len(self.data):
            raise ConversionError(f"{self.path}: truncated at byte {self.position}")
        chunk = self.data[self.position:self.position + n_bytes]
        self.position += n_bytes
        return chunk

    def unpack(self, layout):
        return struct.unpack(layout, self.take(struct.calcsize(layout)))[0]

    def string(self):
        return self.take(self.unpack("<H"))[:-1].decode("utf-8")


def _to_array(raw, dtype_id, shape, name, path):
    if dtype_id >= len(CT2_DTYPES):
        raise ConversionError(f"{path}: variable {name} has unknown dtype id {dtype_id}")
    dtype = CT2_DTYPES[dtype_id]
    if dtype == "bfloat16":
        # numpy has no bfloat16: its 16 bits are the high half of a float32.
        array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    return array.reshape(shape)


def whisper_checkpoint(model_dir):
    """The checkpoint dict whisper.load_model reads: dims, model_state_dict, plus alignment_heads."""
    model_dir = Path(model_dir)
    spec_name, variables = read_ct2_model(model_dir / "model.bin")
    if spec_name != "WhisperSpec":
        raise ConversionError(f"{model_dir}: a {spec_name} model, not WhisperSpec")
    config = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").exists() else {}
    n_audio_layer = _count_layers(variables, "encoder")
    n_text_layer = _count_layers(variables, "decoder")
    token_embedding = variables["decoder/embeddings/weight"]
    dims = {
        "n_mels": int(variables["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(variables["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(variables["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(variables["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(token_embedding.shape[0]),
        "n_text_ctx": int(variables["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(token_embedding.shape[1]),
        "n_text_head": int(variables["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    state = {
        "encoder.conv1.weight": variables["encoder/conv1/weight"],
        "encoder.conv1.bias": variables["encoder/conv1/bias"],
        "encoder.conv2.weight": variables["encoder/conv2/weight"],
        "encoder.conv2.bias": variables["encoder/conv2/bias"],
        # A buffer in openai-whisper (sinusoids), but a saved one: load_state_dict expects it.
        "encoder.positional_embedding": variables["encoder/position_encodings/encodings"],
    }
    for layer in range(n_audio_layer):
        scope, block = f"encoder/layer_{layer}", f"encoder.blocks.{layer}"
        state.update(_self_attention(variables, f"{scope}/self_attention", f"{block}.attn", f"{block}.attn_ln"))
        state.update(_feed_forward(variables, f"{scope}/ffn", block))
    state.update(_layer_norm(variables, "encoder/layer_norm", "encoder.ln_post"))
    state["decoder.token_embedding.weight"] = token_embedding
    state["decoder.positional_embedding"] = variables["decoder/position_encodings/encodings"]
    for layer in range(n_text_layer):
        scope, block = f"decoder/layer_{layer}", f"decoder.blocks.{layer}"
        state.update(_self_attention(variables, f"{scope}/self_attention", f"{block}.attn", f"{block}.attn_ln"))
        state.update(_cross_attention(variables, f"{scope}/attention", block))
        state.update(_feed_forward(variables, f"{scope}/ffn", block))
    state.update(_layer_norm(variables, "decoder/layer_norm", "decoder.ln"))
    checkpoint = {"dims": dims, "model_state_dict": state}
    if config.get("alignment_heads"):
        checkpoint["alignment_heads"] = alignment_heads_dump(config["alignment_heads"], n_text_layer, dims["n_text_head"])
    return checkpoint


def _count_layers(variables, stack):
    return len({name.split("/")[1] for name in variables if re.match(rf"{stack}/layer_\d+/", name)})


def _layer_norm(variables, scope, prefix):
    return {f"{prefix}.weight": variables[f"{scope}/gamma"], f"{prefix}.bias": variables[f"{scope}/beta"]}


def _linear(variables, scope, prefix, with_bias=True):
    weights = {f"{prefix}.weight": variables[f"{scope}/weight"]}
    if with_bias:
        weights[f"{prefix}.bias"] = variables[f"{scope}/bias"]
    return weights


def _query_key_value(prefix, weights, biases):
    """openai-whisper's separate projections from CTranslate2's fused rows; key has no bias there
    (CTranslate2 stores zeros for it)."""
    state = {}
    for role, weight, bias in zip(("query", "key", "value"), weights, biases):
        state[f"{prefix}.{role}.weight"] = weight
        if role != "key":
            state[f"{prefix}.{role}.bias"] = bias
    return state


def _self_attention(variables, scope, prefix, norm_prefix):
    fused_weight = variables[f"{scope}/linear_0/weight"]
    fused_bias = variables[f"{scope}/linear_0/bias"]
    state = _query_key_value(prefix, np.split(fused_weight, 3), np.split(fused_bias, 3))
    state.update(_linear(variables, f"{scope}/linear_1", f"{prefix}.out"))
    state.update(_layer_norm(variables, f"{scope}/layer_norm", norm_prefix))
    return state


def _cross_attention(variables, scope, block):
    prefix = f"{block}.cross_attn"
    key_value_weight = np.split(variables[f"{scope}/linear_1/weight"], 2)
    key_value_bias = np.split(variables[f"{scope}/linear_1/bias"], 2)
    state = _query_key_value(
        prefix,
        [variables[f"{scope}/linear_0/weight"], *key_value_weight],
        [variables[f"{scope}/linear_0/bias"], *key_value_bias],
    )
    state.update(_linear(variables, f"{scope}/linear_2", f"{prefix}.out"))
    state.update(_layer_norm(variables, f"{scope}/layer_norm", f"{block}.cross_attn_ln"))
    return state


def _feed_forward(variables, scope, block):
    state = _linear(variables, f"{scope}/linear_0", f"{block}.mlp.0")
    state.update(_linear(variables, f"{scope}/linear_1", f"{block}.mlp.2"))
    state.update(_layer_norm(variables, f"{scope}/layer_norm", f"{block}.mlp_ln"))
    return state


def alignment_heads_dump(pairs, n_text_layer, n_text_head):
    """[[layer, head], ...] in the encoding Whisper.set_alignment_heads reads (gzip + base85 of a bool mask)."""
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for layer, head in pairs:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def convert_ct2_whisper(model_dir, destination):
    """Write the openai-whisper checkpoint of a CTranslate2 whisper directory to `destination`.

    Saved through an in-memory buffer: torch names the archive after the file, and the bytes (hence
    the sha256) must not depend on where the conversion ran.
    """
    import torch

    checkpoint = whisper_checkpoint(model_dir)
    checkpoint["model_state_dict"] = {
        name: torch.from_numpy(np.array(array)) for name, array in checkpoint["model_state_dict"].items()
    }
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    Path(destination).write_bytes(buffer.getvalue())
    return Path(destination)


# Whisper models loaded in this process, by (checkpoint path, device), and the lock that loads each once
# when threads ask for it together.
_loaded_whispers = {}
_loading_whisper = threading.Lock()


def load_whisper(checkpoint_path, device="cpu"):
    """whisper.load_model on a cached checkpoint, with the alignment heads it carries (for word timestamps).

    Loaded once per process: loading takes seconds, transcribing reuses the model for every video."""
    key = (str(checkpoint_path), device)
    with _loading_whisper:
        if key not in _loaded_whispers:
            _loaded_whispers[key] = _read_whisper(checkpoint_path, device)
        return _loaded_whispers[key]


def _read_whisper(checkpoint_path, device):
    # Imported here: torch and whisper take seconds to import, which only transcribing processes should pay.
    import torch
    import whisper

    model = whisper.load_model(str(checkpoint_path), device=device)
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True, mmap=True)
    if checkpoint.get("alignment_heads"):
        model.set_alignment_heads(checkpoint["alignment_heads"])
    return model
