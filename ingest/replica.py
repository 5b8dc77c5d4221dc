"""This process's replica of the knowledge base's FAISS index, caught up from the database on use.

The database holds every vector; a node keeps a snapshot under INDEX_DIR and each process that searches or
indexes keeps the index in memory, adding only chunks past its mark and applying only new removals, so one
more video costs the same whatever the size of the knowledge base. Snapshots are written when enough has
changed since the last one (a constant share of the index), which keeps their cost per video constant too.

While the embedding model is being switched, the process keeps a second index of the target model's vectors,
caught up as the re-embedding job stores them; the moment the switch completes in the database, that index,
already complete, takes over from the old one. Until then questions are embedded with the old model and
searched in the old index.
"""
import logging
import math
import threading

import numpy as np
from django.conf import settings

from inference.plumbing.disk import NoSpaceError
from ingest.knowledge_index import KnowledgeIndex
from ingest.models import Chunk, EmbeddingSetting, KnowledgeBase, ReembeddedVector, RemovedChunk

SNAPSHOT_NAME = "knowledge.npz"
BATCH_SIZE = 5000
# A snapshot is rewritten once the changes since the last one reach this share of the index (or MIN).
SNAPSHOT_CHANGE_SHARE = 0.25
SNAPSHOT_MIN_CHANGES = 1000

log = logging.getLogger(__name__)

_lock = threading.Lock()
_replica = None  # the vectors of the active embedding model (its generation)
_target = None  # the vectors of the model being switched to, while a switch runs
_changes_since_snapshot = 0
_snapshot_refused = False  # the disk was full at the last try: said once, tried again at every catch-up


def snapshot_path():
    return settings.INDEX_DIR / SNAPSHOT_NAME


def current_replica():
    """The caught-up index of the active embedding model's vectors in this process."""
    return searchable_index()[1]


def searchable_index():
    """(model name, caught-up index of its vectors): embed a question with that model, search that index."""
    with _lock:
        while True:
            embedding = EmbeddingSetting.current()
            adopt_generations(embedding)
            # False when a switch completed meanwhile: read the setting again and move to the new index.
            if catch_up(_replica) and catch_up_target(embedding):
                return embedding.active_model, _replica


def forget_replica():
    """Drop the in-memory replicas (the next use reloads the snapshot), e.g. after the snapshot was rebuilt."""
    global _replica, _target, _changes_since_snapshot
    with _lock:
        _replica, _target, _changes_since_snapshot = None, None, 0


def adopt_generations(embedding):
    """Hold the index of the active generation (the target's index when a switch just completed, else the
    snapshot), and an index of the target's while a switch runs."""
    global _replica, _target, _changes_since_snapshot
    if _replica is None or _replica.generation != embedding.active_generation:
        if _target is not None and _target.generation == embedding.active_generation:
            _replica = _target
            # The node's snapshot holds the previous generation: replace it as soon as this one is caught up.
            _changes_since_snapshot = math.inf
        else:
            _replica = load_snapshot(embedding.active_generation)
    if not embedding.is_switching:
        _target = None
    elif _target is None or _target.generation != embedding.target_generation:
        _target = KnowledgeIndex(nprobe=settings.INGEST_IVF_NPROBE, generation=embedding.target_generation)


def load_snapshot(generation):
    """The node's snapshot when it holds this generation of vectors, else an empty index (and the snapshot is
    replaced as soon as the index is caught up)."""
    global _changes_since_snapshot
    path = snapshot_path()
    if path.exists():
        snapshot = KnowledgeIndex.load(path, nprobe=settings.INGEST_IVF_NPROBE)
        if snapshot.generation == generation:
            return snapshot
        _changes_since_snapshot = math.inf
    return KnowledgeIndex(nprobe=settings.INGEST_IVF_NPROBE, generation=generation)


def generation_unchanged(generation):
    """Read after rows of vectors: still the generation they were read for, so they are its vectors (a switch
    replaces every vector in one transaction, and bumps the generation in it)."""
    return EmbeddingSetting.current().active_generation == generation


def catch_up(replica):
    """Apply what the database gained and lost since the replica's marks; snapshot when it is worth it. False
    when the database's vectors are no longer of the replica's generation (a switch of embedding model completed)."""
    global _changes_since_snapshot
    revision = KnowledgeBase.objects.values_list("revision", flat=True).first() or 0
    if revision == replica.revision:
        return True
    if revision < replica.revision:
        # The database was replaced (restored from a backup, a fresh test database): start from nothing.
        replica.__init__(nprobe=replica.nprobe, generation=replica.generation)
    added = add_new_chunks(replica, Chunk.objects.all(), lambda: generation_unchanged(replica.generation))
    if added is None:
        return False
    changes = added + apply_removals(replica)
    replica.revision = revision
    if replica.is_exact and replica.size > settings.INGEST_EXACT_INDEX_LIMIT:
        replica.switch_to_ivf()
        changes += replica.size
    _changes_since_snapshot += changes
    if _changes_since_snapshot >= max(SNAPSHOT_MIN_CHANGES, SNAPSHOT_CHANGE_SHARE * replica.size) or not snapshot_path().exists():
        save_snapshot(replica)
    return True


def catch_up_target(embedding):
    """Add the target model's vectors stored since the last look (the job stores them in chunk id order), apply
    removals. False when the switch completed or was replaced meanwhile."""
    if _target is None:
        return True

    def switch_unchanged():
        return EmbeddingSetting.objects.filter(
            pk=1, active_generation=embedding.active_generation, target_generation=_target.generation
        ).exists()

    if add_new_chunks(_target, ReembeddedVector.objects.all(), switch_unchanged) is None:
        return False
    apply_removals(_target)
    return True


def save_snapshot(replica):
    """A snapshot only spares the next process reading the database: a full disk keeps the previous one (and
    this process searching from memory) and is said once, until a snapshot is written again."""
    global _changes_since_snapshot, _snapshot_refused
    try:
        replica.save(snapshot_path())
    except NoSpaceError as error:
        if not _snapshot_refused:
            log.error("%s; searching from memory and keeping the previous snapshot until there is room", error)
        _snapshot_refused = True
        return
    if _snapshot_refused:
        log.warning("index snapshot written again at %s", snapshot_path())
    _snapshot_refused = False
    _changes_since_snapshot = 0


def add_new_chunks(replica, rows, still_valid):
    """Add the vectors of rows (keyed by chunk id) past the replica's chunk mark; return how many, or None
    when `still_valid()`, asked after each read, says the rows just read may be of another generation (those
    are left out)."""
    # Chunks are read before removals: a chunk deleted meanwhile is then always removed again below.
    added = 0
    while True:
        batch = list(rows.filter(pk__gt=replica.chunk_mark).order_by("pk").values_list("pk", "vector")[:BATCH_SIZE])
        if not still_valid():
            return None
        if not batch:
            return added
        ids = np.fromiter((row[0] for row in batch), dtype=np.int64, count=len(batch))
        vectors = np.stack([np.frombuffer(bytes(row[1]), dtype=np.float32) for row in batch])  # [rows, dims]
        replica.add(ids, vectors)
        replica.chunk_mark = int(ids[-1])
        added += len(batch)


def apply_removals(replica):
    rows = list(RemovedChunk.objects.filter(id__gt=replica.removal_mark).order_by("id").values_list("id", "chunk_id"))
    if rows:
        replica.remove([chunk_id for _, chunk_id in rows])
        replica.removal_mark = rows[-1][0]
    return len(rows)


def rebuild_snapshot():
    """Build this node's index from the database alone, replacing its snapshot; return the index size."""
    forget_replica()
    snapshot_path().unlink(missing_ok=True)
    return current_replica().size
