"""The switch of embedding model embeds the transcripts' segments too: until it completes, citations keep the old
model's segment vectors; once it does, every video has them by the new model, so the first question after a
switch embeds no transcript."""
import numpy as np
import pytest

from ingest import reembedding
from ingest.embedding import embed_texts, segment_texts
from ingest.models import EmbeddingSetting, ReembeddedSegmentVectors, SegmentVectors
from ingest.segment_vectors import video_segment_vectors
from ingest.services import do_store_segment_vectors
from tests.ingest.embedding_switch import NEW_MODEL, OLD_MODEL, install_catalog, store_update

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_switch_replaces_every_videos_segment_vectors_once_it_completes(monkeypatch):
    install_catalog()
    videos = [store_update(number) for number in range(3)]
    for video in videos[:2]:  # the third was ingested before segment vectors were stored
        do_store_segment_vectors(video, embed_texts(segment_texts(video.segments), OLD_MODEL), OLD_MODEL)
    assert reembedding.do_choose_embedding_model(NEW_MODEL)

    # The switch stops short of completing: its batches are stored, the old model still answers.
    monkeypatch.setattr(reembedding, "complete_switch", lambda owner, generation: True)
    reembedding.do_reembed_chunks()
    assert set(ReembeddedSegmentVectors.objects.values_list("video_id", flat=True)) == {video.pk for video in videos}
    assert set(SegmentVectors.objects.values_list("model", flat=True)) == {OLD_MODEL}
    monkeypatch.undo()
    EmbeddingSetting.objects.filter(pk=1).update(owner="")  # that worker stopped; the next one completes the switch

    assert reembedding.do_reembed_chunks()
    assert EmbeddingSetting.objects.get(pk=1).active_model == NEW_MODEL
    assert not ReembeddedSegmentVectors.objects.exists()
    stored = {row.video_id: row for row in SegmentVectors.objects.all()}
    assert set(stored) == {video.pk for video in videos} and {row.model for row in stored.values()} == {NEW_MODEL}
    for video in videos:
        expected = embed_texts(segment_texts(video.segments), NEW_MODEL)  # [segments, dims]
        np.testing.assert_allclose(stored[video.pk].array, expected, atol=2e-3)

    # Citations read them: nothing is embedded for them any more.
    monkeypatch.setattr("ingest.segment_vectors.embed_texts", lambda *args, **kwargs: pytest.fail("embedded a transcript"))
    assert {pk: array.shape for pk, array in video_segment_vectors(videos, NEW_MODEL).items()} == {
        video.pk: (len(video.segments), 768) for video in videos
    }
