"""Transcription's whisper is loaded once per process, however many threads ask for it together, by the
loader that gives it the alignment heads its checkpoint carries (word timestamps read them)."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from inference.cache.whisper_ct2 import alignment_heads_dump
from inference.services import do_fetch_model
from ingest import transcription

pytestmark = pytest.mark.django_db  # the model catalog is in the database

THREADS = 4


def test_threads_asking_for_whisper_together_share_one_model():
    checkpoint = str(do_fetch_model("whisper-tiny.en"))
    with ThreadPoolExecutor(THREADS) as pool:
        models = list(pool.map(lambda _: transcription.load_whisper(checkpoint), range(THREADS)))
    assert all(model is models[0] for model in models)


def test_the_transcribing_whisper_has_the_alignment_heads_its_checkpoint_carries(tmp_path):
    import torch

    checkpoint = torch.load(do_fetch_model("whisper-tiny.en"), map_location="cpu", weights_only=True)
    layers, heads = checkpoint["dims"]["n_text_layer"], checkpoint["dims"]["n_text_head"]
    chosen = [[0, 1], [layers - 1, heads - 1]]  # not whisper's default, the second half of the layers
    checkpoint["alignment_heads"] = alignment_heads_dump(chosen, layers, heads)
    torch.save(checkpoint, tmp_path / "with-heads.pt")

    model = transcription.load_whisper(tmp_path / "with-heads.pt")

    expected = np.zeros((layers, heads), dtype=bool)
    for layer, head in chosen:
        expected[layer, head] = True
    assert np.array_equal(model.alignment_heads.to_dense().numpy(), expected)
