"""Ingestion performance, each number next to a reference measured in the same run.

    .venv/bin/python bench/ingest.py                      # everything (about 15 minutes on 2 cores)
    .venv/bin/python bench/ingest.py --parts growth,search --search-chunks 200000

1. Transcription real-time factor (audio seconds per wall second) of ingest.transcription.transcribe, against
   whisper's own transcribe() on the same audio (the cost of our progress reporting).
2. Embedding throughput (chunks/s) of ingest.embedding.embed_texts, against SentenceTransformer.encode directly.
3. Wall time to ingest one more video (store its chunks and vectors, bring this process's FAISS replica up to
   date) into knowledge bases of 10, 1,000 and 10,000 synthetic videos: the ratio to the 10-video time must
   stay within 1.2.
4. Search at 1M synthetic chunks: p95 latency of one query and recall@10 against exact (flat) search, of the
   index a replica has by then: switched to IVF (trained) at INGEST_EXACT_INDEX_LIMIT chunks, grown since.
"""
import argparse
import atexit
import os
import shutil
import statistics
import subprocess
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

DIM = 384
CHUNKS_PER_VIDEO = 16
WORDS = "the team ships a release every week and measures what users do with each feature".split()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="transcription,embedding,growth,search", help="which measurements")
    parser.add_argument("--whisper-model", default="whisper-tiny.en")
    parser.add_argument("--sizes", default="10,1000,10000", help="knowledge base sizes in videos")
    parser.add_argument("--search-chunks", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    parts = args.parts.split(",")
    print(f"# bench/ingest.py on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    if "transcription" in parts:
        bench_transcription(args.whisper_model)
    if "embedding" in parts:
        bench_embedding()
    if "growth" in parts:
        bench_one_more_video([int(size) for size in args.sizes.split(",")])
    if "search" in parts:
        bench_search(args.search_chunks, args.queries)


def bench_transcription(model_name):
    import whisper

    from inference.services import do_fetch_model
    from ingest.transcription import load_whisper, transcribe
    from tests.ingest.media_site import speak
    from tests.ingest.talks import LONG_TALK

    workdir = Path(tempfile.mkdtemp())
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    speak(" ".join(LONG_TALK), workdir / "talk.mp3")
    wav = workdir / "talk.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(workdir / "talk.mp3"), "-ar", "16000", "-ac", "1", str(wav)], check=True)
    audio_s = len(whisper.load_audio(str(wav))) / 16000
    checkpoint = str(do_fetch_model(model_name))
    model = load_whisper(checkpoint)

    started = time.perf_counter()
    transcribe(checkpoint, wav, language="en", on_progress=lambda seconds: None)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    model.transcribe(str(wav), language="en", fp16=False, verbose=None, condition_on_previous_text=False)
    reference = time.perf_counter() - started
    print(f"transcription ({model_name}, {audio_s:.0f} s of speech): {audio_s / ours:.1f}x real time; "
          f"whisper alone {audio_s / reference:.1f}x; ratio ours/whisper time {ours / reference:.2f}")


def bench_embedding():
    from ingest.embedding import embed_texts, encoder

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 200)) for _ in range(256)]
    embed_texts(texts[:8])
    started = time.perf_counter()
    embed_texts(texts)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    encoder().encode(texts, batch_size=32, show_progress_bar=False)
    reference = time.perf_counter() - started
    print(f"embedding (all-MiniLM-L6-v2, 200-word chunks): {len(texts) / ours:.1f} chunks/s; "
          f"sentence-transformers alone {len(texts) / reference:.1f} chunks/s; ratio {ours / reference:.2f}")


def unit_vectors(rng, count):
    vectors = rng.standard_normal((count, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def bench_one_more_video(sizes):
    from django.db import transaction

    from ingest import replica, services
    from ingest.chunking import chunk_segments
    from ingest.models import Chunk, Job, KnowledgeBase, Video

    rng = np.random.default_rng(1)
    segments = [{"start": 5.0 * i, "end": 5.0 * i + 5, "text": " ".join(rng.choice(WORDS, 14))} for i in range(CHUNKS_PER_VIDEO * 10)]
    counter = iter(range(10**9))

    def add_synthetic_videos(count):
        videos = Video.objects.bulk_create(
            Video(extractor="Synthetic", video_id=str(next(counter)), url="https://example.com/v", title="synthetic")
            for _ in range(count)
        )
        Job.objects.bulk_create(Job(video=video, stage=Job.INDEXED, percent=100) for video in videos)
        for start in range(0, len(videos), 500):
            batch = videos[start:start + 500]
            vectors = unit_vectors(rng, len(batch) * CHUNKS_PER_VIDEO)
            Chunk.objects.bulk_create(
                Chunk(video=video, position=p, start_s=0, end_s=1, text="synthetic", vector=vectors[i * CHUNKS_PER_VIDEO + p].tobytes())
                for i, video in enumerate(batch)
                for p in range(CHUNKS_PER_VIDEO)
            )
        with transaction.atomic():
            KnowledgeBase.locked().bump()

    def ingest_one_more():
        video = Video.objects.create(extractor="Synthetic", video_id=str(next(counter)), url="https://example.com/v")
        job = Job.objects.create(video=video, stage=Job.EMBEDDING)
        started = time.perf_counter()
        chunks = chunk_segments(segments)
        with transaction.atomic():
            services.store_chunks(video, chunks, unit_vectors(rng, len(chunks)))
            Job.objects.filter(pk=job.pk).update(stage=Job.INDEXED)
        replica.current_replica()
        return time.perf_counter() - started

    times = {}
    present = 0
    for size in sizes:
        add_synthetic_videos(size - present)
        present = size
        replica.current_replica()  # a worker's replica is warm: it has caught up before the next video
        samples = [ingest_one_more() for _ in range(15)]
        present += len(samples)
        times[size] = statistics.median(samples)
        print(f"one more video into {size:>6} videos ({replica.current_replica().size:>7} chunks): "
              f"median {1000 * times[size]:.1f} ms, max {1000 * max(samples):.1f} ms, "
              f"ratio to {sizes[0]} videos {times[size] / times[sizes[0]]:.2f} (goal <= 1.2)")


def bench_search(chunk_count, query_count):
    import faiss
    from django.conf import settings

    from ingest.knowledge_index import KnowledgeIndex

    rng = np.random.default_rng(2)
    # Clustered like real transcripts (many chunks per topic), not uniform noise, which no ANN index can learn.
    centers = unit_vectors(rng, 4096)
    vectors = centers[rng.integers(0, len(centers), chunk_count)] + 0.6 * unit_vectors(rng, chunk_count)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.integers(0, chunk_count, query_count)] + 0.3 * unit_vectors(rng, query_count)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    started = time.perf_counter()
    index = KnowledgeIndex(nprobe=settings.INGEST_IVF_NPROBE)
    switch_at = min(chunk_count, settings.INGEST_EXACT_INDEX_LIMIT)
    index.add(np.arange(switch_at), vectors[:switch_at])
    index.switch_to_ivf()
    index.add(np.arange(switch_at, chunk_count), vectors[switch_at:])
    build_s = time.perf_counter() - started
    del vectors

    _, truth = exact.search(queries, 10)
    latencies, exact_latencies, hits = [], [], 0
    for number, query in enumerate(queries):
        started = time.perf_counter()
        _, found = index.search(query, 10)
        latencies.append(time.perf_counter() - started)
        hits += len(set(found[0]) & set(truth[number]))
        if number < 50:
            started = time.perf_counter()
            exact.search(query[None, :], 10)
            exact_latencies.append(time.perf_counter() - started)
    p95 = np.percentile(latencies, 95) * 1000
    exact_p95 = np.percentile(exact_latencies, 95) * 1000
    print(f"search at {chunk_count} chunks (IVF{faiss.extract_index_ivf(index.index).nlist}, nprobe {index.nprobe}, "
          f"trained at {switch_at} chunks, built in {build_s:.0f} s): p95 {p95:.1f} ms (goal < 50), exact search p95 {exact_p95:.1f} ms, "
          f"speed-up {exact_p95 / p95:.0f}x; recall@10 vs exact {hits / (10 * query_count):.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
