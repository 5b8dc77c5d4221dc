"""Switching the cluster's embedding model: every chunk embedded again in the background, while questions are
still embedded with the old model and searched in the old index, until the new vectors are complete.

The switch is one job on the EmbeddingSetting row, leased like a pipeline job (a conditional UPDATE on its
`owner`), so a redelivered task message runs it once and a killed worker's job is taken over. It embeds chunks
in id order, BATCH_CHUNKS at a time, with the transcript segments of the batch's videos not embedded yet (the
vectors citations and search moments are placed with); each batch is stored with the new mark
(`reembedded_through`) and the progress in one transaction, so a job taken over resumes after the last batch stored. Chunks ingested meanwhile
have higher ids and are embedded by the same loop: the switch completes only when, under the knowledge base's
lock (which every write of chunks takes), no chunk is left past the mark. Then, in that transaction, the new
vectors replace the old ones, chunks' and segments', and the target becomes the active model.
"""
import logging

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from inference.plumbing.leases import claim_for_this_process, holder_is_dead
from ingest.embedding import embed_texts, segment_texts
from ingest.selectors import embedding_model_names
from ingest.models import (Chunk, EmbeddingSetting, KnowledgeBase, ReembeddedSegmentVectors, ReembeddedVector,
                           SegmentVectors, Video)
from ingest.replica import current_replica

logger = logging.getLogger(__name__)

# A batch is stored, and progress shown, every few seconds even with the larger model on a small node.
BATCH_CHUNKS = 32


class UnknownEmbeddingModel(ValueError):
    pass


class SwitchLost(Exception):
    """This process no longer owns the switch (taken over, cancelled or replaced): stop without writing."""


def do_choose_embedding_model(model_name):
    """Make `model_name` the cluster's embedding model: start re-embedding every chunk with it (the active model
    answers until that is complete), or, when it is the active model, cancel a switch in progress. Return
    whether a re-embedding is to be sent to the workers. Raises UnknownEmbeddingModel."""
    if model_name not in embedding_model_names():
        raise UnknownEmbeddingModel(f"{model_name!r} is not an embedding model of the catalog")
    with transaction.atomic():
        setting = EmbeddingSetting.locked()
        if model_name == (setting.target_model or setting.active_model):
            return setting.is_switching
        ReembeddedVector.objects.all().delete()
        ReembeddedSegmentVectors.objects.all().delete()
        setting.target_model = "" if model_name == setting.active_model else model_name
        # Every switch started is a generation of its own, so no index built for an earlier one is taken for it.
        setting.target_generation = max(setting.active_generation, setting.target_generation) + 1
        setting.reembedded_through = 0
        setting.reembedded_count = 0
        setting.percent = 0.0
        setting.owner = ""
        setting.heartbeat_at = timezone.now()
        setting.error = ""
        setting.save()
        return setting.is_switching


def do_reembed_chunks():
    """Run the pending switch in this process until it completes; return whether this call completed it."""
    owner = claim_for_this_process(EmbeddingSetting.objects.filter(pk=1).exclude(target_model=""), "owner", "heartbeat_at")
    if owner is None:
        return False
    setting = EmbeddingSetting.objects.get(pk=1)
    model_name, generation = setting.target_model, setting.target_generation
    try:
        while True:
            batch = list(Chunk.objects.filter(pk__gt=setting.reembedded_through).order_by("pk")
                         .values_list("pk", "text", "video_id")[:BATCH_CHUNKS])
            if not batch and complete_switch(owner, generation):
                break
            if batch:
                vectors = embed_texts([text for _, text, _ in batch], model_name)  # [len(batch), dims]
                segments = embed_segments_of({video_id for _, _, video_id in batch}, model_name)
                setting = store_batch(owner, generation, [chunk_id for chunk_id, _, _ in batch], vectors, segments)
                # This process's index of the new vectors grows with them, so this node has it complete at the end.
                current_replica()
    except SwitchLost:
        return False
    except Exception as error:
        # Not taken as the end of the switch: the resend sweep offers it again after INGEST_RESEND_AFTER_S.
        logger.exception("re-embedding with %s failed", model_name)
        owned(owner, generation).update(owner="", heartbeat_at=timezone.now(), error=f"{type(error).__name__}: {error}")
        return False
    current_replica()
    return True


def owned(owner, generation):
    """The setting row, as long as this process still runs this switch."""
    return EmbeddingSetting.objects.filter(pk=1, owner=owner, target_generation=generation).exclude(target_model="")


def embed_segments_of(video_ids, model_name):
    """{video id: float32 [segments, dims]} by model_name, for those of the videos whose segments are not yet."""
    done = set(ReembeddedSegmentVectors.objects.filter(video_id__in=video_ids).values_list("video_id", flat=True))
    videos = Video.objects.filter(pk__in=set(video_ids) - done).only("segments")
    return {video.pk: embed_texts(segment_texts(video.segments), model_name) for video in videos if video.segments}


def store_batch(owner, generation, chunk_ids, vectors, segments):
    """Store a batch's vectors (chunks' and `segments`' {video id: [segments, dims]}) with the new mark and progress
    in one transaction; return the updated row."""
    with transaction.atomic():
        # The knowledge base's lock: no chunk of the batch is deleted between this check and the commit.
        KnowledgeBase.locked()
        existing = set(Chunk.objects.filter(pk__in=chunk_ids).values_list("pk", flat=True))
        ReembeddedVector.objects.bulk_create(
            ReembeddedVector(chunk_id=chunk_id, vector=vector.tobytes())
            for chunk_id, vector in zip(chunk_ids, vectors)
            if chunk_id in existing
        )
        alive = set(Video.objects.filter(pk__in=segments).values_list("pk", flat=True))
        ReembeddedSegmentVectors.objects.bulk_create(
            [ReembeddedSegmentVectors(video_id=video_id, dims=array.shape[1], vectors=array.tobytes())
             for video_id, array in segments.items() if video_id in alive],
            ignore_conflicts=True,  # a run taken over may store a video's segments its predecessor stored
        )
        done = ReembeddedVector.objects.count()
        remaining = Chunk.objects.filter(pk__gt=chunk_ids[-1]).count()
        stored = owned(owner, generation).update(
            reembedded_through=chunk_ids[-1],
            reembedded_count=done,
            percent=100.0 * done / max(done + remaining, 1),
            heartbeat_at=timezone.now(),
            error="",
        )
        if not stored:
            raise SwitchLost()
    return EmbeddingSetting.objects.get(pk=1)


def complete_switch(owner, generation):
    """Make the target active with its vectors, unless chunks were stored past the mark meanwhile (False: embed
    them first). One transaction under the knowledge base's lock: every node sees both or neither."""
    with transaction.atomic():
        knowledge_base = KnowledgeBase.locked()
        setting = EmbeddingSetting.locked()
        if setting.owner != owner or setting.target_generation != generation or not setting.is_switching:
            raise SwitchLost()
        if Chunk.objects.filter(pk__gt=setting.reembedded_through).exists():
            return False
        Chunk.objects.update(vector=Subquery(ReembeddedVector.objects.filter(chunk=OuterRef("pk")).values("vector")[:1]))
        ReembeddedVector.objects.all().delete()
        replace_segment_vectors(setting.target_model)
        setting.active_model, setting.active_generation = setting.target_model, generation
        setting.target_model, setting.owner, setting.percent = "", "", 100.0
        setting.switched_at = setting.heartbeat_at = timezone.now()
        setting.save()
        knowledge_base.bump()
    logger.info("embedding model switched to %s: %s chunks embedded again", setting.active_model, setting.reembedded_count)
    return True


def replace_segment_vectors(model_name):
    """Every video's segment vectors become those the switch embedded by model_name. In complete_switch's transaction."""
    video_ids = list(ReembeddedSegmentVectors.objects.values_list("video_id", flat=True))
    SegmentVectors.objects.filter(video_id__in=video_ids).delete()
    SegmentVectors.objects.bulk_create(
        SegmentVectors(video_id=row.video_id, model=model_name, dims=row.dims, vectors=row.vectors)
        for row in ReembeddedSegmentVectors.objects.iterator(chunk_size=64)
    )
    ReembeddedSegmentVectors.objects.all().delete()


def do_release_lost_reembedding(node_name=None, resend_before=None):
    """True when the switch in progress is to be sent to the workers again: its owner died (on `node_name` only,
    when given: that node's worker starting again), or, without a node name, nobody has run it since
    `resend_before` (None: at once, the broker lost its messages)."""
    setting = EmbeddingSetting.objects.filter(pk=1).exclude(target_model="").first()
    if setting is None:
        return False
    if setting.owner:
        if node_name and not setting.owner.startswith(f"{node_name}:"):
            return False
        return holder_is_dead(setting.owner, setting.heartbeat_at) and EmbeddingSetting.objects.filter(
            pk=1, owner=setting.owner
        ).update(owner="", heartbeat_at=timezone.now()) == 1
    if node_name or (resend_before is not None and setting.heartbeat_at and setting.heartbeat_at >= resend_before):
        return False
    # Offered now: not again before another INGEST_RESEND_AFTER_S while the message waits in a long queue.
    return EmbeddingSetting.objects.filter(pk=1, owner="").update(heartbeat_at=timezone.now()) == 1
