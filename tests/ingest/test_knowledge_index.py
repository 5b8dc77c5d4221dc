import numpy as np

from ingest.knowledge_index import KnowledgeIndex


def unit_vectors(count, dim=16, seed=0):
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_search_returns_chunk_ids_best_first():
    index = KnowledgeIndex()
    vectors = unit_vectors(50)
    index.add(np.arange(1000, 1050), vectors)
    scores, ids = index.search(vectors[7], k=3)
    assert ids[0][0] == 1007
    assert scores[0][0] > 0.99 and list(scores[0]) == sorted(scores[0], reverse=True)


def test_removed_ids_are_never_found_again():
    index = KnowledgeIndex()
    vectors = unit_vectors(20)
    index.add(np.arange(20), vectors)
    index.remove([3, 4])
    _, ids = index.search(vectors[3], k=20)
    assert 3 not in ids[0] and 4 not in ids[0] and index.size == 18


def test_a_saved_index_loads_with_its_marks(tmp_path):
    index = KnowledgeIndex(chunk_mark=40, removal_mark=2, revision=9)
    vectors = unit_vectors(40)
    index.add(np.arange(1, 41), vectors)
    index.save(tmp_path / "knowledge.npz")
    loaded = KnowledgeIndex.load(tmp_path / "knowledge.npz")
    assert (loaded.chunk_mark, loaded.removal_mark, loaded.revision, loaded.size) == (40, 2, 9, 40)
    assert loaded.search(vectors[10], k=1)[1][0][0] == 11


def test_switching_to_ivf_keeps_ids_and_supports_removal():
    index = KnowledgeIndex(nprobe=64)
    vectors = unit_vectors(5000, dim=32)
    index.add(np.arange(10, 5010), vectors)
    index.switch_to_ivf()
    assert not index.is_exact and index.size == 5000
    assert index.search(vectors[123], k=1)[1][0][0] == 133
    index.remove([133])
    assert 133 not in index.search(vectors[123], k=5)[1][0]
    index.add([9999], vectors[:1])
    assert index.search(vectors[0], k=2)[1][0].tolist().count(9999) == 1
