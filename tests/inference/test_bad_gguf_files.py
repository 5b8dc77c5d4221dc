"""Files the engine cannot run fail with one line naming the file and the reason."""

import numpy as np
import pytest
from gguf import GGUFWriter

from inference.core.gguf_loader import GGUFError, load_stage, read_gguf
from tests.inference.tiny_gguf import write_tiny_gguf


def load(path):
    model = read_gguf(path)
    return load_stage(model, range(model.config.n_layers), with_embedding=True, with_head=True)


def assert_one_line_error(path, *fragments):
    with pytest.raises(GGUFError) as error:
        load(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message
    assert isinstance(error.value, ValueError)


def test_a_file_that_is_not_gguf_is_rejected(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("these are not the weights you are looking for\n" * 100)
    assert_one_line_error(path, "not a readable GGUF file", "magic")


def test_an_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    assert_one_line_error(path, "not a readable GGUF file")


def test_a_missing_file_is_rejected(tmp_path):
    assert_one_line_error(tmp_path / "absent.gguf", "no such file")


def test_a_truncated_copy_of_the_real_model_is_rejected(tmp_path, smollm2_gguf):
    path = tmp_path / "truncated.gguf"
    with open(smollm2_gguf, "rb") as source, open(path, "wb") as target:
        target.write(source.read(smollm2_gguf.stat().st_size // 2))
    assert_one_line_error(path, "truncated")


def test_a_copy_cut_inside_the_header_is_rejected(tmp_path, smollm2_gguf):
    path = tmp_path / "header-only.gguf"
    with open(smollm2_gguf, "rb") as source, open(path, "wb") as target:
        target.write(source.read(100_000))  # inside the tokenizer metadata
    assert_one_line_error(path, "not a readable GGUF file")


def test_an_unknown_architecture_is_rejected(tmp_path):
    path = tmp_path / "mamba.gguf"
    writer = GGUFWriter(str(path), "mamba")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert_one_line_error(path, "unsupported architecture 'mamba'", "llama, qwen2, qwen3")


def test_a_tensor_type_gguf_cannot_dequantize_is_named_with_its_tensor(tmp_path):
    path = write_tiny_gguf(tmp_path / "tiny.gguf", undequantizable="blk.1.ffn_up.weight")
    assert_one_line_error(path, "blk.1.ffn_up.weight", "Q8_1", "cannot dequantize")
