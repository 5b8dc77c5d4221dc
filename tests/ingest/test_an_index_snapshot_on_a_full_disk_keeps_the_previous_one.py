"""An index snapshot that does not fit on the disk fails with one line and leaves the previous snapshot whole;
the replica keeps searching from memory, says so once, and writes the snapshot when space returns."""
import logging

import numpy as np
import pytest

from inference.plumbing.disk import NoSpaceError
from ingest import replica
from ingest.knowledge_index import KnowledgeIndex
from tests.tiny_filesystem import tiny_filesystem

MB = 1024 * 1024


def vectors(count, dim=384, seed=0):
    return np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)


@pytest.fixture
def index_dir(tmp_path, settings):
    with tiny_filesystem(tmp_path / "index", size="4m") as mount_point:
        settings.INDEX_DIR = mount_point
        yield mount_point


def test_a_snapshot_too_big_for_the_disk_fails_with_one_line_and_the_previous_snapshot_still_loads(index_dir):
    index = KnowledgeIndex(revision=1)
    index.add(np.arange(1000), vectors(1000))
    index.save(index_dir / "knowledge.npz")
    index.add(np.arange(1000, 3000), vectors(2000, seed=1))
    index.revision = 2

    with pytest.raises(NoSpaceError) as refused:
        index.save(index_dir / "knowledge.npz")

    assert str(refused.value) == f"index snapshot: no space left on {index_dir} (needs 5 MB)"
    previous = KnowledgeIndex.load(index_dir / "knowledge.npz")
    assert (previous.size, previous.revision) == (1000, 1)
    assert sorted(path.name for path in index_dir.iterdir()) == ["knowledge.npz"]


def test_the_replica_says_a_full_disk_once_and_writes_the_snapshot_when_space_returns(index_dir, caplog):
    filler = index_dir / "someone-elses-file"
    filler.write_bytes(b"\0" * 3 * MB)
    index = KnowledgeIndex(revision=5)
    index.add(np.arange(1000), vectors(1000))

    with caplog.at_level(logging.WARNING, logger="ingest.replica"):
        replica.save_snapshot(index)
        replica.save_snapshot(index)
        refused_meanwhile = not replica.snapshot_path().exists()
        filler.unlink()
        replica.save_snapshot(index)

    assert refused_meanwhile
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"index snapshot: no space left on {index_dir}")
    assert KnowledgeIndex.load(replica.snapshot_path()).revision == 5
