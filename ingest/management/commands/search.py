import json

from django.core.management.base import BaseCommand, CommandError

from ingest.selectors import search_knowledge_base


class Command(BaseCommand):
    help = "Search the shared knowledge base; the last line is a JSON list of chunks, best first."

    def add_arguments(self, parser):
        parser.add_argument("query")
        parser.add_argument("--k", type=int, default=5, help="how many chunks (default 5)")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print only the JSON line")

    def handle(self, *args, query, k, as_json=False, **options):
        if k < 1:
            raise CommandError("--k must be at least 1")
        if not query.strip():
            raise CommandError("give a question or some words to search for")
        results = search_knowledge_base(query, k)
        if not as_json:
            for result in results:
                self.stdout.write(
                    f"{result['score']:.3f}  {result['title']}  [{result['start_s']:.0f}-{result['end_s']:.0f} s]  "
                    f"{result['url']}\n       {result['text'][:160]}"
                )
        self.stdout.write(json.dumps(results, ensure_ascii=False))
