"""A layer fetch reads where a GGUF's tensor data starts by skipping over the header's values, so it fetches a
growing prefix until the header is whole and parses it only then (parsing a large vocabulary takes seconds)."""
from gguf import GGMLQuantizationType

from inference.cache.gguf_shards import header_length
from inference.core.gguf_loader import read_gguf
from tests.inference.tiny_gguf import write_tiny_gguf


def test_the_header_length_is_where_the_tensor_data_starts_and_none_for_a_prefix_cut_inside_it(tmp_path):
    path = write_tiny_gguf(tmp_path / "tiny.gguf", qtype=GGMLQuantizationType.Q4_K)
    data_start = min(tensor.offset for tensor in read_gguf(path).tensors.values())
    whole = path.read_bytes()

    assert header_length(whole) == data_start
    assert header_length(whole[:data_start]) == data_start
    assert header_length(whole[: data_start // 2]) is None
    assert header_length(whole[:10]) is None
