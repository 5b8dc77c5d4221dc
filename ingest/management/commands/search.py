import json

from django.core.management.base import BaseCommand, CommandError

from ingest.retrieval import retrieve


class Command(BaseCommand):
    help = (
        "Search the shared knowledge base as the assistant does (FAISS and BM25 fused, neighbouring chunks "
        "merged); the last line is a JSON list of passages, best first."
    )

    def add_arguments(self, parser):
        parser.add_argument("query")
        parser.add_argument("--k", type=int, default=5, help="at most this many passages (default 5)")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print only the JSON line")

    def handle(self, *args, query, k, as_json=False, **options):
        if k < 1:
            raise CommandError("--k must be at least 1")
        if not query.strip():
            raise CommandError("give a question or some words to search for")
        results = [passage.as_dict() for passage in retrieve(query, limit=k)]
        if not as_json:
            for result in results:
                self.stdout.write(
                    f"{result['fused_score']:.4f} (cosine {result['score']:.3f})  {result['title']}  "
                    f"[{result['start_s']:.0f}-{result['end_s']:.0f} s]  {result['url']}\n       {result['text'][:160]}"
                )
        self.stdout.write(json.dumps(results, ensure_ascii=False))
