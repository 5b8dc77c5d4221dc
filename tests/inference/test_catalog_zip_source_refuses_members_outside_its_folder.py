"""A zip source whose members would land outside the model folder (an absolute path or '..': zip-slip)
is refused as a whole, with one line naming the member, before a single file is written."""
import zipfile

import pytest

from inference.cache.sources import SourceError, produce
from inference.cache.store import BlobStore


@pytest.mark.parametrize("evil_member", ["model_download/../../escaped.txt", "/tmp/kotatsu-zip-slip-escaped.txt"])
def test_a_member_escaping_the_folder_is_refused_in_one_line(tmp_path, evil_member):
    archive_path = tmp_path / "model.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("model_download/config.json", "{}")
        archive.writestr(zipfile.ZipInfo(evil_member), "overwritten")
    work_dir = tmp_path / "deep" / "work"
    work_dir.mkdir(parents=True)

    with pytest.raises(SourceError) as refused:
        produce("path", [[str(archive_path)]], "unzip", BlobStore(tmp_path / "cache"), work_dir)

    message = str(refused.value)
    assert "\n" not in message and repr(evil_member) in message and "refused" in message
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert not (work_dir / "unzipped").exists(), "nothing is extracted from a refused archive"


def test_a_zip_that_is_not_one_folder_is_refused_in_one_line(tmp_path):
    archive_path = tmp_path / "model.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("model_download/config.json", "{}")
        archive.writestr("notes.txt", "loose")

    with pytest.raises(SourceError, match="expected a zip of one folder") as refused:
        produce("path", [[str(archive_path)]], "unzip", BlobStore(tmp_path / "cache"), tmp_path / "work")

    assert "\n" not in str(refused.value)
