"""The FAISS index of chunk vectors, keyed by chunk id. Django-free.

Exact inner-product search (IndexIDMap2 over a flat index) while small; past a size threshold, an IVF index,
whose inverted lists keep ids natively and support removal. The index also remembers how far it has caught up
with the database (the last chunk id added, the last removal applied) and which generation of vectors it
holds (each switch of embedding model is a new one), saved with it in one file so a snapshot and its marks never
disagree. It returns the vectors it holds, so a question is only ever compared with vectors of its own model.
"""
from pathlib import Path

import faiss
import numpy as np

from inference.plumbing.disk import write_atomically

EXACT_FACTORY = "IDMap2,Flat"
TRAINING_POINTS_PER_LIST = 64


class KnowledgeIndex:
    def __init__(self, index=None, chunk_mark=0, removal_mark=0, revision=-1, nprobe=32, generation=0):
        self.index = index
        self.chunk_mark = chunk_mark
        self.removal_mark = removal_mark
        self.revision = revision
        self.generation = generation
        self.nprobe = nprobe
        self.configure_search()

    @property
    def size(self):
        return 0 if self.index is None else self.index.ntotal

    @property
    def is_exact(self):
        return self.index is None or faiss.try_extract_index_ivf(self.index) is None

    def configure_search(self):
        ivf = None if self.index is None else faiss.try_extract_index_ivf(self.index)
        if ivf is not None:
            ivf.nprobe = min(self.nprobe, ivf.nlist)
            if ivf.direct_map.type != faiss.DirectMap.Hashtable:
                # Vectors are looked up by chunk id (vectors_of); a hash table also keeps removal possible.
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)

    def add(self, ids, vectors):
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.index is None:
            self.index = faiss.index_factory(vectors.shape[1], EXACT_FACTORY, faiss.METRIC_INNER_PRODUCT)
        self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids):
        if self.index is not None and len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, query_vectors, k):
        """(scores, chunk ids) arrays of shape (queries, k); missing results have id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        if self.size == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.index.search(queries, min(k, self.size))

    def vectors_of(self, ids):
        """{chunk id: vector} of those ids the index holds."""
        found = {}
        for chunk_id in ids:
            try:
                found[int(chunk_id)] = self.index.reconstruct(int(chunk_id))  # [dims]
            except (RuntimeError, AttributeError):  # not (or no longer) in the index, or no index yet
                continue
        return found

    def switch_to_ivf(self, seed=0):
        """Replace the exact index with an IVF index over the same vectors. Done once, at the threshold."""
        ids, vectors = self.exact_contents()
        nlist = ivf_list_count(len(ids))
        ivf = faiss.index_factory(vectors.shape[1], f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(len(ids), min(len(ids), nlist * TRAINING_POINTS_PER_LIST), replace=False)
        ivf.train(vectors[np.sort(sample)])
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        ivf.add_with_ids(vectors, ids)
        self.index = ivf
        self.configure_search()

    def exact_contents(self):
        flat = faiss.downcast_index(self.index.index)
        vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()
        return faiss.vector_to_array(self.index.id_map).astype(np.int64), vectors

    def save(self, path):
        """Write atomically and durably: readers, and a node restarted after a crash, see the previous snapshot
        or this one, never half of one. A full disk raises NoSpaceError and leaves the previous snapshot."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        serialized = faiss.serialize_index(self.index) if self.index is not None else np.zeros(0, np.uint8)
        marks = np.array([self.chunk_mark, self.removal_mark, self.revision, self.generation])
        write_atomically(
            path, lambda handle: np.savez(handle, index=serialized, marks=marks), "index snapshot", serialized.nbytes
        )

    @classmethod
    def load(cls, path, nprobe=32):
        with np.load(path) as stored:
            serialized, marks = stored["index"], stored["marks"]
        index = faiss.deserialize_index(serialized) if serialized.size else None
        # Snapshots written before embedding models could be switched hold three marks: generation 0.
        chunk_mark, removal_mark, revision, generation = (*(int(mark) for mark in marks), 0)[:4]
        return cls(index, chunk_mark, removal_mark, revision, nprobe, generation)


def ivf_list_count(size):
    """About 4·√n lists: a few thousand vectors per list to scan, and enough points to train each list."""
    return max(1, min(int(4 * np.sqrt(size)), size // TRAINING_POINTS_PER_LIST))
