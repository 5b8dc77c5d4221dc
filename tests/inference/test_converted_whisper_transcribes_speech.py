"""The CTranslate2 → openai-whisper conversion, judged by what matters: the model still hears."""
import re
import subprocess

import pytest

from inference.cache.whisper_ct2 import load_whisper
from inference.services import do_fetch_model

SPOKEN = "Please send the weekly report to the office before noon on Friday."


def words(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference, hypothesis):
    """Word-level edit distance (substitutions + insertions + deletions) over the reference length."""
    reference, hypothesis = words(reference), words(hypothesis)
    previous = list(range(len(hypothesis) + 1))
    for i, expected in enumerate(reference, 1):
        current = [i]
        for j, heard in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (expected != heard)))
        previous = current
    return previous[-1] / len(reference)


def test_word_error_rate_counts_substitutions_insertions_and_deletions():
    assert word_error_rate("a b c d", "a x c d e") == 0.5
    assert word_error_rate("a b c d", "b c d") == 0.25


@pytest.mark.django_db
def test_converted_whisper_tiny_en_transcribes_an_espeak_clip_with_at_most_a_quarter_of_words_wrong(tmp_path):
    checkpoint = do_fetch_model("whisper-tiny.en")
    clip = tmp_path / "clip.wav"
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(clip), SPOKEN], check=True)

    heard = load_whisper(checkpoint).transcribe(str(clip), fp16=False, language="en")["text"]

    assert word_error_rate(SPOKEN, heard) <= 0.25, heard
