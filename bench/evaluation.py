"""Retrieval and answer quality on the evaluation set of bench/evaluation_set.py (issues 14 and 15), through the
product's own paths: the talks are spoken, served as a podcast feed (and a subtitled page for the Japanese one)
and ingested with `manage.py ingest --inline` (whisper-base, or --whisper); questions go to ingest.retrieval.retrieve and
assistant.answering.GroundedAnswer.

    .venv/bin/python bench/evaluation.py --retrieval-only                       # both embedding models, minutes
    .venv/bin/python bench/evaluation.py --llm smollm2-135m-instruct --embedding all-minilm-l6-v2
    .venv/bin/python bench/evaluation.py --llm qwen2.5-coder-1.5b-instruct --limit 10 --verbose

For each embedding model and direction (EN->EN, JA->EN, EN->JA, JA->JA; EN/JA->none are the unanswerable):
- retrieval: the right talk's passage first; the second retrieval points at in it (the segment closest to the
  question, as a citation without an answer resolves) within +-20 s of the sentence that answers; the
  unanswerable left without any passage;
- answers, per LLM: the answer states the fact (every group of facts, in either language's form); it cites
  ([n]) a source of the right talk whose segment is within +-5 s of the sentence; the unanswerable refused;
  the answer in the question's language.
Also chunks/s of embedding the knowledge base's chunks with each model (best of 3) and, for a model other than
all-minilm-l6-v2, of the product's switch job that re-embeds them (ingest.reembedding).

The ingested knowledge base is kept under --cache-dir (default /tmp/kotatsu-evaluation), keyed by the talks,
the speech settings and the whisper model: one directory (VAR_DIR, SQLite) per embedding model, the first
ingested with all-minilm-l6-v2, the others copies switched to their model. Each embedding model runs in a child
process of its own (settings are per process). Redis: REDIS_URL, or an embedded one started here.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.evaluation_set import (  # noqa: E402
    PAUSE_S, QUESTIONS, TALKS, TALKS_BY_GUID, WORDS_PER_MINUTE, speak_talk, subtitles_vtt,
)

EMBEDDING_MODELS = ("all-minilm-l6-v2", "embeddinggemma-300m")
LLMS = ("smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct")
BASE_MODEL = EMBEDDING_MODELS[0]  # the knowledge base is ingested with it, then copied and switched
RETRIEVAL_TOLERANCE_S = 20
CITATION_TOLERANCE_S = 5
DIRECTIONS = ("EN->EN", "JA->EN", "EN->JA", "JA->JA", "EN->none", "JA->none")
CITATION = re.compile(r"\[(\d+)\]")
JAPANESE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
# Refusals of the product (assistant.answering's notices) and of a model saying it in its own words.
REFUSAL_WORDS = ("does not cover", "not covered", "no information", "not mentioned", "not provided",
                 "含まれていません", "ありません", "カバーしていません", "記載されていません", "情報はありません")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedding", default=",".join(EMBEDDING_MODELS), help="comma-separated embedding models")
    parser.add_argument("--llm", default=",".join(LLMS), help="comma-separated LLMs whose answers are evaluated")
    parser.add_argument("--retrieval-only", action="store_true", help="no answers: retrieval and embedding speed")
    parser.add_argument("--answers-only", action="store_true",
                        help="no retrieval table nor embedding speed: answers alone (half the time on a loaded machine)")
    parser.add_argument("--limit", type=int, help="at most this many questions of each direction")
    parser.add_argument("--skip", type=int, default=0,
                        help="leave out the first this many questions of each direction (a run cut in two with --limit)")
    parser.add_argument("--directions", default=",".join(DIRECTIONS), help="comma-separated, e.g. EN->EN,JA->EN")
    parser.add_argument("--max-tokens", type=int, help="answer length cap (default: the product's)")
    parser.add_argument("--source-tokens", type=int, help="the grounded prompt's source budget instead of the "
                        "product's (assistant.answering.SOURCE_TOKENS): a shorter prefill measured before it is chosen")
    parser.add_argument("--system-prompt", help="answer with this system prompt instead of the product's "
                        "(assistant.answering.SYSTEM_PROMPT): a prompt change measured before it is made")
    parser.add_argument("--whisper", default="whisper-base", help="the English talks' whisper model")
    parser.add_argument("--with-summaries", action="store_true",
                        help="build the knowledge base with the pipeline's LLM summaries (slow; never read here)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "kotatsu-evaluation")
    parser.add_argument("--json", type=Path, help="also write every question's result here")
    parser.add_argument("--verbose", action="store_true", help="print each question's result as it comes")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # an embedding model: run it in this process
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.embeddings = [name for name in args.embedding.split(",") if name]
    args.llms = [] if args.retrieval_only else [name for name in args.llm.split(",") if name]
    args.direction_list = [name for name in args.directions.split(",") if name]
    unknown = sorted(set(args.direction_list) - set(DIRECTIONS))
    if unknown:
        parser.error(f"--directions: unknown {', '.join(unknown)} (known: {', '.join(DIRECTIONS)})")
    if args.child:
        run_child(args)
    else:
        run_parent(args)


# ---------------------------------------------------------------- parent: one child per embedding model


def run_parent(args):
    redis_process = None
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "assistant.settings", "KOTATSU_ALLOW_PRIVATE_URLS": "1"}
    if not env.get("REDIS_URL"):
        from inference.plumbing.embedded_redis import start_embedded_redis

        redis_dir = Path(tempfile.mkdtemp(prefix="kotatsu-evaluation-redis-"))
        port = free_port()
        redis_process = start_embedded_redis(port, redis_dir, redis_dir / "redis.log")
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    print(f"# bench/evaluation.py on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"knowledge base cache {knowledge_base_dir(args.cache_dir, args.whisper, BASE_MODEL).parent}")
    results = []
    try:
        # The other models' knowledge bases are copies of the base model's.
        order = sorted(args.embeddings, key=lambda name: name != BASE_MODEL)
        if BASE_MODEL not in order and not is_complete(knowledge_base_dir(args.cache_dir, args.whisper, BASE_MODEL)):
            order.insert(0, BASE_MODEL)
        for embedding in order:
            out = Path(tempfile.mkstemp(prefix="kotatsu-evaluation-", suffix=".json")[1])
            command = [sys.executable, str(Path(__file__).resolve()), "--child", embedding, "--child-out", str(out),
                       "--cache-dir", str(args.cache_dir), "--whisper", args.whisper, "--directions", args.directions]
            command += ["--with-summaries"] if args.with_summaries else []
            command += ["--answers-only"] if args.answers_only else []
            if args.retrieval_only or embedding not in args.embeddings:
                command.append("--retrieval-only")
            else:
                command += ["--llm", ",".join(args.llms)]
            command += ["--limit", str(args.limit)] if args.limit else []
            command += ["--skip", str(args.skip)] if args.skip else []
            command += ["--system-prompt", args.system_prompt] if args.system_prompt else []
            command += ["--source-tokens", str(args.source_tokens)] if args.source_tokens else []
            command += ["--max-tokens", str(args.max_tokens)] if args.max_tokens else []
            command += ["--verbose"] if args.verbose else []
            completed = subprocess.run(command, env=env, cwd=PROJECT_DIR)
            if completed.returncode != 0:
                sys.exit(f"evaluation with {embedding} failed (exit {completed.returncode})")
            if embedding in args.embeddings:
                results.append(json.loads(out.read_text()))
            out.unlink()
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)
    print_tables(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def knowledge_base_dir(cache_dir, whisper, embedding):
    """The talks' knowledge base ingested (or switched) with `embedding`, keyed by everything the
    transcripts depend on."""
    recipe = repr((TALKS, WORDS_PER_MINUTE, PAUSE_S, whisper)).encode()
    return cache_dir / hashlib.sha256(recipe).hexdigest()[:16] / embedding


def is_complete(var_dir):
    return (var_dir / "complete").exists()


def percent(part, whole):
    return f"{part}/{whole} ({100 * part / whole:.0f} %)" if whole else "-"


def print_tables(results, args):
    if any(result["retrieval"] for result in results):
        print_retrieval_tables(results, args)
    print_answer_table(results, args)


def print_retrieval_tables(results, args):
    print("\n## Retrieval (ingest.retrieval.retrieve)\n")
    print("| embedding | direction | questions | right talk first | answering second within ±20 s | no passage |")
    print("|---|---|---|---|---|---|")
    for result in results:
        for direction in args.direction_list:
            rows = [row for row in result["retrieval"] if row["direction"] == direction]
            if not rows:
                continue
            if direction.endswith("none"):
                print(f"| {result['embedding']} | {direction} | {len(rows)} | - | - | "
                      f"{percent(sum(not row['top_talk'] for row in rows), len(rows))} |")
            else:
                print(f"| {result['embedding']} | {direction} | {len(rows)} | "
                      f"{percent(sum(row['right_talk_first'] for row in rows), len(rows))} | "
                      f"{percent(sum(row['second_within'] for row in rows), len(rows))} | - |")
    print("\n## Cosines of the questions to the chunks (what the relevance cut-off separates)\n")
    print("| embedding | cut-off (min_relevance) | direction | answering chunk: lowest, median | "
          "best other chunk: median, highest |")
    print("|---|---|---|---|---|")
    for result in results:
        for direction in args.direction_list:
            rows = [row for row in result["retrieval"] if row["direction"] == direction]
            if not rows:
                continue
            answering = sorted(row["answering_cosine"] for row in rows if row["answering_cosine"] is not None)
            others = sorted(row["best_other_cosine"] for row in rows)
            answering_cell = f"{answering[0]:.3f}, {answering[len(answering) // 2]:.3f}" if answering else "-"
            print(f"| {result['embedding']} | {result['min_relevance']} | {direction} | {answering_cell} | "
                  f"{others[len(others) // 2]:.3f}, {others[-1]:.3f} |")
    print("\n## Embedding speed\n")
    print("| embedding | chunks | chunks/s (embed_texts, best of 3) | switch job chunks/s (ingest.reembedding) | retrieve ms (median) |")
    print("|---|---|---|---|---|")
    for result in results:
        switch = f"{result['switch_chunks_per_s']:.1f}" if result.get("switch_chunks_per_s") else "-"
        print(f"| {result['embedding']} | {result['chunks']} | {result['chunks_per_s']:.1f} | {switch} | "
              f"{result['retrieve_ms_median']:.0f} |")


def print_answer_table(results, args):
    answered = [(result, llm, rows) for result in results for llm, rows in result["answers"].items()]
    if not answered:
        return
    print("\n## Answers (assistant.answering.GroundedAnswer)\n")
    print("| embedding | LLM | direction | questions | states the fact | cites right talk ±5 s | refused | "
          "in the question's language | s per answer (median) | source budget | prompt tokens (median) | first sentence s (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result, llm, all_rows in answered:
        for direction in args.direction_list:
            rows = [row for row in all_rows if row["direction"] == direction]
            if not rows:
                continue
            seconds = sorted(row["seconds"] for row in rows)[len(rows) // 2]
            prompt_tokens = sorted(row["prompt_tokens"] for row in rows)[len(rows) // 2]
            first_sentence_s = sorted(row["first_sentence_s"] for row in rows)[len(rows) // 2]
            unanswerable = direction.endswith("none")
            print(f"| {result['embedding']} | {llm} | {direction} | {len(rows)} | "
                  f"{'-' if unanswerable else percent(sum(row['states_fact'] for row in rows), len(rows))} | "
                  f"{'-' if unanswerable else percent(sum(row['cites_right'] for row in rows), len(rows))} | "
                  f"{percent(sum(row['refused'] for row in rows), len(rows))} | "
                  f"{percent(sum(row['in_question_language'] for row in rows), len(rows))} | {seconds:.1f} | "
                  f"{result['source_tokens']} | {prompt_tokens} | {first_sentence_s:.2f} |")


# ---------------------------------------------------------------- child: one embedding model in this process


def run_child(args):
    embedding = args.child
    var_dir = knowledge_base_dir(args.cache_dir, args.whisper, embedding)
    base_dir = knowledge_base_dir(args.cache_dir, args.whisper, BASE_MODEL)
    if not is_complete(var_dir):
        # An interrupted build starts again: its videos' URLs name the media site's port of that run.
        shutil.rmtree(var_dir, ignore_errors=True)
        if embedding != BASE_MODEL:
            if not is_complete(base_dir):
                sys.exit(f"the {BASE_MODEL} knowledge base is missing under {base_dir}: run with --embedding {BASE_MODEL} first")
            shutil.copytree(base_dir, var_dir, ignore=shutil.ignore_patterns("complete", "logs", "redis*", "audio"))
    var_dir.mkdir(parents=True, exist_ok=True)
    os.environ["VAR_DIR"] = str(var_dir)
    os.environ["INGEST_EMBEDDING_MODEL"] = BASE_MODEL  # the initial setting of a new knowledge base
    os.environ["INGEST_WHISPER_MODEL"] = args.whisper
    os.environ["INGEST_LANGUAGE"] = ""

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from ingest.retrieval import min_relevance

    result = {"embedding": embedding}
    if not is_complete(var_dir):
        if embedding == BASE_MODEL:
            ingest_talks(var_dir, args.with_summaries)
        else:
            result["switch_chunks_per_s"] = switch_embedding_model(embedding)
        (var_dir / "complete").write_text(time.strftime("%Y-%m-%d %H:%M:%S"))
        result["built_now"] = True
    questions = [question for direction in args.direction_list
                 for question in [q for q in QUESTIONS if q.direction == direction][args.skip:][: args.limit]]
    result["retrieval"] = []
    if not args.answers_only:
        result.update(measure_embedding(embedding))
        result["retrieval"] = evaluate_retrieval(questions, args.verbose)
        result["min_relevance"] = min_relevance(embedding)
        result["retrieve_ms_median"] = sorted(row["retrieve_ms"] for row in result["retrieval"])[len(questions) // 2]
    from assistant import answering

    if args.source_tokens:
        answering.SOURCE_TOKENS = args.source_tokens
    result["source_tokens"] = answering.SOURCE_TOKENS
    result["answers"] = {llm: evaluate_answers(questions, llm, args.max_tokens, args.verbose, args.system_prompt)
                         for llm in args.llms}
    args.child_out.write_text(json.dumps(result, ensure_ascii=False))


def ingest_talks(var_dir, with_summaries):
    """Speak the talks, serve them (a feed of the English ones, a subtitled page for each Japanese one) and
    ingest them through the pipeline; exit when a talk is not indexed. Without with_summaries the pipeline's
    last step, the LLM's summary of an indexed video, is left out: retrieval and answers never read it, and
    on the shared machine it took over 10 minutes per talk."""
    import datetime as dt

    from ingest import tasks

    if not with_summaries:
        tasks.summarize_video = skipped_summary

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from ingest.models import Job, Video
    from tests.ingest.media_site import Episode, MediaSite

    site_root = var_dir / "site"
    site_root.mkdir(parents=True, exist_ok=True)
    if not get_user_model().objects.filter(username="evaluation").exists():  # ingest subscribes an administrator
        get_user_model().objects.create_superuser("evaluation", password=None)
    site = MediaSite(site_root).start()
    settings.ALLOW_PRIVATE_URLS = True
    now = dt.datetime.now(dt.timezone.utc)
    pages = []
    try:
        for hours_ago, talk in enumerate(TALKS, start=1):
            spans = speak_talk(talk, site_root / f"{talk.guid}.wav")
            to_mp3(site_root / f"{talk.guid}.wav", site_root / f"{talk.guid}.mp3")
            if talk.subtitled:
                (site_root / f"{talk.guid}.vtt").write_text(subtitles_vtt(talk, spans), encoding="utf-8")
                (site_root / f"{talk.guid}.html").write_text(subtitled_page(talk), encoding="utf-8")
                pages.append(site.url(f"{talk.guid}.html"))
            else:
                episode = Episode(talk.guid, talk.title, list(talk.sentences), now - dt.timedelta(hours=hours_ago))
                site.add_episode(episode, media_name=f"{talk.guid}.mp3")
        started = time.perf_counter()
        run_ingest(site.feed_url)
        settings.INGEST_USE_SUBTITLES = True
        for page in pages:
            run_ingest(page)
        settings.INGEST_USE_SUBTITLES = False
        finish_left_jobs()
        print(f"ingested {len(TALKS)} talks in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        site.stop()
    titles = {talk.title for talk in TALKS}
    indexed = {talk_title(title) for title in Video.objects.filter(job__stage=Job.INDEXED).values_list("title", flat=True)}
    if titles - indexed:
        sys.exit(f"not indexed: {', '.join(sorted(titles - indexed))} (see {var_dir / 'logs'})")


def skipped_summary(video_id):
    """In place of ingest.tasks.summarize_video, which run_here calls after a video is indexed."""


def run_ingest(url):
    """manage.py ingest URL --inline; a failure after indexing (a summary, say) is reported and the talks'
    stages judged afterwards."""
    from django.core.management import call_command

    try:
        call_command("ingest", url, "--inline")
    except Exception as error:
        print(f"ingest {url} --inline failed: {type(error).__name__}: {error}", flush=True)


def finish_left_jobs():
    """Run, in this process as ingest --inline does, the jobs an ingest that failed midway (in a summary, say)
    left behind."""
    from ingest.models import Job
    from ingest.tasks import embed_video, run_here, transcribe_video

    for job in Job.objects.exclude(stage__in=Job.FINAL_STAGES):
        try:
            run_here(transcribe_video if job.stage in Job.TRANSCRIBE_STAGES else embed_video, job.pk)
        except Exception as error:
            print(f"job {job.pk} ({job.video.title}) failed: {type(error).__name__}: {error}", flush=True)


def to_mp3(wav_path, mp3_path):
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav_path), "-codec:a", "libmp3lame", "-b:a", "48k",
                    str(mp3_path)], check=True)
    wav_path.unlink()


def subtitled_page(talk):
    return (
        f'<html lang="{talk.language}"><head><meta charset="utf-8"><title>{talk.title}</title></head><body>'
        f'<video controls><source src="{talk.guid}.mp3" type="audio/mpeg">'
        f'<track kind="subtitles" src="{talk.guid}.vtt" srclang="{talk.language}"></video></body></html>'
    )


def switch_embedding_model(embedding):
    """Switch the copied knowledge base to `embedding` with the product's job; return its chunks/s."""
    from ingest.models import Chunk
    from ingest.reembedding import do_choose_embedding_model, do_reembed_chunks

    do_choose_embedding_model(embedding)
    started = time.perf_counter()
    if not do_reembed_chunks():
        sys.exit(f"switching to {embedding} did not complete (see the log above)")
    return Chunk.objects.count() / (time.perf_counter() - started)


def measure_embedding(embedding):
    from ingest.embedding import active_embedding_model, embed_texts
    from ingest.models import Chunk

    active = active_embedding_model()
    if active != embedding:
        sys.exit(f"the knowledge base under {os.environ['VAR_DIR']} is embedded with {active}, not {embedding}")
    texts = list(Chunk.objects.order_by("pk").values_list("text", flat=True))
    embed_texts(texts[:2])
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        embed_texts(texts)
        best = min(best, time.perf_counter() - started)
    return {"chunks": len(texts), "chunks_per_s": len(texts) / best}


def talk_of_video():
    """{video primary key: talk guid}, by title (the feed's items and the subtitled pages keep theirs)."""
    from ingest.models import Video

    guids = {talk.title: talk.guid for talk in TALKS}
    return {pk: guids.get(talk_title(title)) for pk, title in Video.objects.values_list("pk", "title")}


def talk_title(video_title):
    """The talk's title in a video's: yt-dlp names the video of a page "<page title> (1)"."""
    return re.sub(r" \(\d+\)$", "", video_title)


def evaluate_retrieval(questions, verbose):
    from assistant.answering import cited_sources
    from ingest.retrieval import retrieve

    talks = talk_of_video()
    retrieve("warm up")
    cosines_of = chunk_cosines()
    rows = []
    for question in questions:
        started = time.perf_counter()
        passages = retrieve(question.text)
        retrieve_ms = 1000 * (time.perf_counter() - started)
        top_talk = talks.get(passages[0].video.pk) if passages else None
        # The second a citation without an answer resolves to: the top passage's segment closest to the question.
        pointed = cited_sources(question.text, "", passages[:1])[0]["start_s"] if passages else None
        row = {
            "question": question.text,
            "direction": question.direction,
            "talk": question.talk,
            "top_talk": top_talk,
            "right_talk_first": question.talk is not None and top_talk == question.talk,
            "pointed_second": pointed,
            "second_within": (question.talk is not None and top_talk == question.talk
                              and abs(pointed - question.second) <= RETRIEVAL_TOLERANCE_S),
            "passages": [(talks.get(p.video.pk), round(p.start_s), round(p.end_s), round(p.score, 3)) for p in passages],
            "retrieve_ms": retrieve_ms,
            **cosines_of(question),
        }
        rows.append(row)
        if verbose:
            mark = "ok" if (row["second_within"] if question.talk else not passages) else "MISS"
            print(f"[retrieval {mark}] {question.direction} {question.text} -> {row['passages'][:3]} "
                  f"pointed {pointed} (want {question.talk} {question.second}); cosine of the answering chunk "
                  f"{row['answering_cosine']}, of the best other {row['best_other_cosine']}", flush=True)
    return rows


def chunk_cosines():
    """question -> {"answering_cosine": the cosine of the answering chunk (the right talk's chunk holding the
    second; None for the unanswerable), "best_other_cosine": the best cosine of any other chunk}: what the
    embedding model's relevance cut-off must separate, over every chunk, not only those retrieval kept."""
    from ingest.embedding import active_embedding_model, embed_texts
    from ingest.models import Chunk
    from ingest.replica import current_replica

    talks = talk_of_video()
    chunks = list(Chunk.objects.values_list("pk", "video_id", "start_s", "end_s"))
    vectors = current_replica().vectors_of([pk for pk, *_ in chunks])
    model_name = active_embedding_model()

    def cosines_of(question):
        question_vector = embed_texts([question.text], model_name, as_query=True)[0]  # [dims]
        answering, others = [], []
        for pk, video_id, start_s, end_s in chunks:
            cosine = round(float(vectors[pk] @ question_vector), 3)
            holds = question.talk is not None and talks.get(video_id) == question.talk and start_s <= question.second <= end_s
            (answering if holds else others).append(cosine)
        return {"answering_cosine": max(answering, default=None), "best_other_cosine": max(others)}

    return cosines_of


def normalized(text):
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    return re.sub(r"(?<=\d)[,，](?=\d)", "", text)


def states(answer, facts):
    text = normalized(answer)
    return all(any(normalized(form) in text for form in group) for group in facts)


def is_refusal(answer):
    from assistant import answering

    notices = [answering.NOT_COVERED, *getattr(answering, "NOT_COVERED_IN", {}).values()]
    text = normalized(answer)
    return any(normalized(notice) in text for notice in notices) or any(words in text for words in REFUSAL_WORDS)


def evaluate_answers(questions, llm, max_tokens, verbose, system_prompt=None):
    from assistant import answering
    from assistant.answering import GroundedAnswer

    if system_prompt:
        answering.SYSTEM_PROMPT = system_prompt
    talks = talk_of_video()
    options = {"max_tokens": max_tokens} if max_tokens else {}
    "".join(GroundedAnswer("Hello?", model_name=llm, **options))  # loads the model
    rows = []
    for question in questions:
        started = time.perf_counter()
        answer = GroundedAnswer(question.text, model_name=llm, **options)
        pieces = iter(answer)
        text = next(pieces, "")
        first_sentence_s = time.perf_counter() - started  # what the asker waits for (the ttft of the streams)
        text += "".join(pieces)
        seconds = time.perf_counter() - started
        cited = {int(number) for number in CITATION.findall(answer.text)}
        cites_right = question.talk is not None and any(
            source["n"] in cited and talks.get(source["video_id"]) == question.talk
            and source["start_s"] - CITATION_TOLERANCE_S <= question.second <= source["end_s"] + CITATION_TOLERANCE_S
            for source in answer.sources
        )
        row = {
            "question": question.text,
            "direction": question.direction,
            "talk": question.talk,
            "answer": answer.text or text,
            "sources": [(source["n"], talks.get(source["video_id"]), source["start_s"], source["end_s"])
                        for source in answer.sources],
            "states_fact": question.talk is not None and states(answer.text, question.facts),
            "cites_right": cites_right,
            # A notice instead of a generated answer (nothing relevant, or a model that cannot answer in the
            # question's language) asserts nothing either.
            "refused": answer.stream is None or is_refusal(answer.text),
            "in_question_language": bool(JAPANESE.search(answer.text)) == (question.language == "ja"),
            "ttft_s": answer.ttft_s,  # the model's first token
            "first_sentence_s": first_sentence_s,
            "prompt_tokens": answer.prompt_tokens,
            "seconds": seconds,
            "completion_tokens": answer.completion_tokens,
            "dropped": answer.dropped,  # sentences stating facts the sources do not say
        }
        rows.append(row)
        if verbose:
            good = row["refused"] if question.talk is None else row["states_fact"] and row["cites_right"]
            print(f"[{llm} {'ok' if good else 'MISS'}] {question.direction} {question.text} "
                  f"(want {question.talk} {question.second}) -> {row['answer']!r} sources {row['sources']} "
                  f"{seconds:.1f} s, first sentence {first_sentence_s:.2f} s, prompt {answer.prompt_tokens} tokens"
                  + (f"; dropped {row['dropped']!r}" if row["dropped"] else ""), flush=True)
    return rows


if __name__ == "__main__":
    main()
