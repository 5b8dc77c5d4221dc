"""This process's replica of the knowledge base's FAISS index, caught up from the database on use.

The database holds every vector; a node keeps a snapshot under INDEX_DIR and each process that searches or
indexes keeps the index in memory, adding only chunks past its mark and applying only new removals, so one
more video costs the same whatever the size of the knowledge base. Snapshots are written when enough has
changed since the last one (a constant share of the index), which keeps their cost per video constant too.
"""
import logging
import threading

import numpy as np
from django.conf import settings

from inference.plumbing.disk import NoSpaceError
from ingest.knowledge_index import KnowledgeIndex
from ingest.models import Chunk, KnowledgeBase, RemovedChunk

SNAPSHOT_NAME = "knowledge.npz"
BATCH_SIZE = 5000
# A snapshot is rewritten once the changes since the last one reach this share of the index (or MIN).
SNAPSHOT_CHANGE_SHARE = 0.25
SNAPSHOT_MIN_CHANGES = 1000

log = logging.getLogger(__name__)

_lock = threading.Lock()
_replica = None
_changes_since_snapshot = 0
_snapshot_refused = False  # the disk was full at the last try: said once, tried again at every catch-up


def snapshot_path():
    return settings.INDEX_DIR / SNAPSHOT_NAME


def current_replica():
    """The caught-up index of this process, loaded from the node's snapshot the first time."""
    global _replica
    with _lock:
        if _replica is None:
            _replica = load_snapshot()
        catch_up(_replica)
        return _replica


def forget_replica():
    """Drop the in-memory replica (the next use reloads the snapshot), e.g. after the snapshot was rebuilt."""
    global _replica, _changes_since_snapshot
    with _lock:
        _replica, _changes_since_snapshot = None, 0


def load_snapshot():
    path = snapshot_path()
    if path.exists():
        return KnowledgeIndex.load(path, nprobe=settings.INGEST_IVF_NPROBE)
    return KnowledgeIndex(nprobe=settings.INGEST_IVF_NPROBE)


def catch_up(replica):
    """Apply what the database gained and lost since the replica's marks; snapshot when it is worth it."""
    global _changes_since_snapshot
    revision = KnowledgeBase.objects.values_list("revision", flat=True).first() or 0
    if revision == replica.revision:
        return
    if revision < replica.revision:
        # The database was replaced (restored from a backup, a fresh test database): start from nothing.
        replica.__init__(nprobe=replica.nprobe)
    changes = add_new_chunks(replica) + apply_removals(replica)
    replica.revision = revision
    if replica.is_exact and replica.size > settings.INGEST_EXACT_INDEX_LIMIT:
        replica.switch_to_ivf()
        changes += replica.size
    _changes_since_snapshot += changes
    if _changes_since_snapshot >= max(SNAPSHOT_MIN_CHANGES, SNAPSHOT_CHANGE_SHARE * replica.size) or not snapshot_path().exists():
        save_snapshot(replica)


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


def add_new_chunks(replica):
    # Chunks are read before removals: a chunk deleted meanwhile is then always removed again below.
    added = 0
    while True:
        rows = list(Chunk.objects.filter(id__gt=replica.chunk_mark).order_by("id").values_list("id", "vector")[:BATCH_SIZE])
        if not rows:
            return added
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.stack([np.frombuffer(bytes(row[1]), dtype=np.float32) for row in rows])
        replica.add(ids, vectors)
        replica.chunk_mark = int(ids[-1])
        added += len(rows)


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
