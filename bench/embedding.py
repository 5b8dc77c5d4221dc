"""Embedding throughput of the catalog's two embedding models on the same chunks, best of N, in one run.

    .venv/bin/python bench/embedding.py                   # 3 runs of 64 English and 32 Japanese chunks
    .venv/bin/python bench/embedding.py --runs 5 --chunks 256

Chunks are cut by the product's chunker (about 200 words or 60 s) from the spoken test talks: the English long
talk, and a Japanese version of it, sentence by sentence, each repetition numbered so that no two chunks are
equal. Each model embeds them through ingest.embedding.embed_texts, the path ingestion and the re-embedding of a
switch take (document prompt), after a warm-up; the best of N runs is reported, as the 2-core machine is shared.

Also printed, per model: the cosine of the test question to the chunk of the talk that answers it and to the
best chunk of three unrelated talks (tests/assistant/knowledge.py), asked in English and in Japanese, against
the model's relevance cut-off (the catalog's min_relevance, read by ingest.retrieval.min_relevance).
"""
import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
if "VAR_DIR" not in os.environ:
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="kotatsu-bench-")
    atexit.register(shutil.rmtree, os.environ["VAR_DIR"], ignore_errors=True)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")

MODELS = ["all-minilm-l6-v2", "embeddinggemma-300m"]
SEGMENT_S = 5.0
# The long talk's backup paragraph, and the rest, in Japanese (the same facts as tests/ingest/talks.py).
JAPANESE_TALK = [
    "プラットフォームチームの月例エンジニアリング報告へようこそ。",
    "まず、オフィスのコーヒーマシンは火曜日に技術者が修理しました。",
    "新しい会議室は四階に完成し、カレンダーから予約できます。",
    "共有サーバーにデータを保存しているすべての人に重要な変更があります。",
    "メインのデータベースは毎晩三時にバックアップサーバーへコピーされます。",
    "各コピーは一か月保存され、毎月第一月曜日に完全な復元をテストします。",
    "中庭の駐輪場には新しいラックが二十台と修理スタンドが追加されました。",
    "私たちのサッカーチームは今シーズンの社内リーグで優勝しました。",
    "夏のパーティーは屋上テラスで、バーベキューとジャズバンドとともに開かれます。",
    "ご清聴ありがとうございました。また次回の報告でお会いしましょう。",
]
QUESTION_JA = "データベースはいつバックアップサーバーにコピーされますか？"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs per model")
    parser.add_argument("--chunks", type=int, default=64, help="English chunks (half as many Japanese ones)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from ingest.embedding import embed_texts
    from ingest.retrieval import min_relevance
    from tests.assistant.knowledge import KITCHEN_SAFETY, SALES_REVIEW, VPN_ONBOARDING
    from tests.ingest.talks import LONG_TALK, QUESTION

    english = chunk_texts(LONG_TALK, args.chunks)
    japanese = chunk_texts(JAPANESE_TALK, args.chunks // 2)
    print(f"# bench/embedding.py on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"{len(english)} English chunks of {np.mean([len(text.split()) for text in english]):.0f} words, "
          f"{len(japanese)} Japanese chunks of {np.mean([len(text) for text in japanese]):.0f} characters; best of {args.runs}")
    rates = {}
    for model_name in MODELS:
        embed_texts(english[:8], model_name)  # loads the model
        rates[model_name] = {
            language: len(texts) / best_time(lambda: embed_texts(texts, model_name), args.runs)
            for language, texts in (("en", english), ("ja", japanese))
        }
        print(f"{model_name:>22}: {rates[model_name]['en']:6.1f} chunks/s English, {rates[model_name]['ja']:6.1f} chunks/s Japanese")
    small, large = MODELS
    print(f"ratio {large}/{small} chunks/s: English {rates[large]['en'] / rates[small]['en']:.3f}, "
          f"Japanese {rates[large]['ja'] / rates[small]['ja']:.3f}")

    answering = next(text for text in told(LONG_TALK) if "backup server every night" in text)
    unrelated = [text for talk in (KITCHEN_SAFETY, SALES_REVIEW, VPN_ONBOARDING) for text in told(talk)]
    print("cosines: question to the answering chunk / to the best unrelated chunk (the model's relevance cut-off)")
    for model_name in MODELS:
        answer_vector, *unrelated_vectors = embed_texts([answering, *unrelated], model_name)  # [dims] each
        for label, question in (("EN->EN", QUESTION), ("JA->EN", QUESTION_JA)):
            question_vector = embed_texts([question], model_name, as_query=True)[0]  # [dims]
            best_unrelated = max(float(vector @ question_vector) for vector in unrelated_vectors)
            print(f"{model_name:>22} {label}: {float(answer_vector @ question_vector):.3f} / {best_unrelated:.3f} "
                  f"({min_relevance(model_name)})")


def told(sentences, telling=None):
    """The chunk texts of one telling of a talk (numbered, when given, so that no two tellings are equal)."""
    from ingest.chunking import chunk_segments

    spoken = sentences if telling is None else [f"{sentence} ({telling})" for sentence in sentences]
    segments = [{"start": i * SEGMENT_S, "end": (i + 1) * SEGMENT_S, "text": text} for i, text in enumerate(spoken)]
    return [chunk.text for chunk in chunk_segments(segments)]


def chunk_texts(sentences, count):
    """`count` chunk texts of the talk told over and over."""
    texts, telling = [], 0
    while len(texts) < count:
        texts.extend(told(sentences, telling))
        telling += 1
    return texts[:count]


def best_time(run, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


if __name__ == "__main__":
    main()
