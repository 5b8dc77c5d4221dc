from django.core.management.base import BaseCommand

from ingest.replica import rebuild_snapshot


class Command(BaseCommand):
    help = "Rebuild this node's FAISS index from the vectors in the database (the source of truth)."

    def handle(self, *args, **options):
        size = rebuild_snapshot()
        self.stdout.write(f"indexed {size} chunks")
