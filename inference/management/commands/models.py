import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from inference.cache.peers import live_peer_urls, running_fetches
from inference.models import ModelEntry, ModelFetch, ModelMark
from inference.plumbing.redis import redis_client
from inference.selectors import cached_model_names, llm_statuses, model_catalog, serving_choice
from inference.services import (
    ModelCacheError, do_evict_model, do_fetch_model, do_import_model, do_mark_model, do_verify_models,
)
from inference.tasks import fetch_on_live_nodes


class Command(BaseCommand):
    help = (
        "The shared model cache: list, pull, verify, import and evict models on this node (or all nodes); "
        "mark which LLM serves grounded answers (kotatsu) and plain chat (chat)."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="the catalog, and which models this node has cached")
        listing.add_argument("--json", dest="as_json", action="store_true", help="[{name, kind, size, sha256, cached}]")
        pull = actions.add_parser("pull", help="fetch a model into the cache (from a peer, else its sources)")
        pull.add_argument("name", nargs="?")
        pull.add_argument("--all-nodes", action="store_true", help="have every live node's worker fetch it")
        pull.add_argument("--defaults", action="store_true", help="every model marked default (what `up` needs)")
        verify = actions.add_parser("verify", help="rehash cached blobs; exit 1 when one does not match")
        verify.add_argument("name", nargs="?")
        importing = actions.add_parser("import", help="put a local file or folder into the cache")
        importing.add_argument("path")
        importing.add_argument("--name", required=True)
        evict = actions.add_parser("evict", help="remove a model from this node's cache")
        evict.add_argument("name")
        use = actions.add_parser("use", help="mark the LLM that serves a use; without NAME, show the marks")
        use.add_argument("use", nargs="?", choices=[use for use, _ in ModelMark.USE_CHOICES])
        use.add_argument("name", nargs="?", help="a catalog LLM, or auto: the largest the live nodes run interactively")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"handle_{action}")(**options)
        except ModelCacheError as error:
            raise CommandError(str(error)) from None

    def handle_list(self, as_json=False, **options):
        cached = cached_model_names()
        models = model_catalog()
        statuses = {status.name: status for status in llm_statuses()}
        choices = [serving_choice(use, list(statuses.values())) for use, _ in ModelMark.USE_CHOICES]
        serves = {name: [choice.use for choice in choices if choice.name == name] for name in statuses}
        if as_json:
            rows = [
                {"name": m.name, "kind": m.kind, "size": m.size, "sha256": m.sha256, "cached": m.name in cached,
                 **(llm_columns(statuses[m.name], serves[m.name]) if m.name in statuses else {})}
                for m in models
            ]
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for model in models:
            nodes = ", ".join(holding.node_name for holding in model.holdings.all()) or "-"
            mark = "cached" if model.name in cached else "-"
            line = f"{model.name:28} {model.kind:9} {model.size / 1e6:9.1f} MB  {mark:6}  nodes: {nodes}"
            if model.name in statuses:
                uses = "".join(f"  [serves {use}]" for use in serves[model.name])
                line += f"  {run_state(statuses[model.name])}{uses}"
            self.stdout.write(line)
        for choice in choices:
            self.stdout.write(choice_line(choice))

    def handle_pull(self, name=None, all_nodes=False, defaults=False, **options):
        if defaults:
            names = list(ModelEntry.objects.filter(is_default=True).values_list("name", flat=True))
        elif name:
            names = [name]
        else:
            raise CommandError("give a model name, or --defaults")
        for model_name in names:
            if all_nodes:
                self.pull_on_all_nodes(model_name)
            else:
                with tqdm(desc=model_name, unit="B", unit_scale=True, file=sys.stderr) as bar:
                    path = do_fetch_model(model_name, progress=bar_updater(bar))
                self.stdout.write(f"{model_name}: {path}")

    def pull_on_all_nodes(self, model_name):
        # Waits on the fetches' rows, not on Celery results: a message lost with Redis is sent again by the
        # resend sweep, and the row tells how that fetch ended.
        fetch_ids = fetch_on_live_nodes(model_name)
        if not fetch_ids:
            raise CommandError("no live node advertises a model cache; is any `manage.py node` running?")
        client = redis_client()
        bars = {
            node: tqdm(desc=f"{model_name} on {node}", unit="B", unit_scale=True, position=index, file=sys.stderr)
            for index, node in enumerate(fetch_ids)
        }
        pending, failures = set(fetch_ids), []
        while pending:
            live = live_peer_urls(client)
            for node, state in running_fetches(client).get(model_name, {}).items():
                if node in bars:
                    bar_updater(bars[node])(state["done"], state["total"])
            fetches = ModelFetch.objects.in_bulk([fetch_ids[node] for node in pending])
            for node in sorted(pending):
                fetch = fetches[fetch_ids[node]]
                if fetch.is_finished:
                    pending.discard(node)
                    bars[node].close()
                    if fetch.state == ModelFetch.DONE:
                        self.stdout.write(f"{model_name} on {node}: {fetch.outcome}")
                    else:
                        failures.append(f"{node}: {fetch.outcome}")
                elif node not in live:
                    pending.discard(node)
                    bars[node].close()
                    failures.append(f"{node}: the node went away (it fetches the model when it is back)")
            time.sleep(0.5)
        if failures:
            raise CommandError(f"{model_name}: failed on " + "; ".join(failures))

    def handle_verify(self, name=None, **options):
        results = do_verify_models(name)
        for model_name, digest, intact in results:
            self.stdout.write(f"{model_name}: {digest} {'ok' if intact else 'CORRUPT (quarantined; run models pull)'}")
        if not results:
            self.stdout.write("nothing cached on this node")
        if not all(intact for _, _, intact in results):
            raise CommandError("some blobs do not match their sha256")

    def handle_import(self, path, name, **options):
        model = do_import_model(path, name)
        self.stdout.write(f"{model.name}: imported ({model.sha256})")

    def handle_use(self, use=None, name=None, **options):
        if use is None:
            statuses = llm_statuses()
            for marked_use, _ in ModelMark.USE_CHOICES:
                self.stdout.write(choice_line(serving_choice(marked_use, statuses)))
            return
        if name is None:
            raise CommandError(f"give the LLM that serves {use} (a catalog LLM's name, or auto)")
        do_mark_model(use, name)
        self.stdout.write(choice_line(serving_choice(use)))

    def handle_evict(self, name, **options):
        removed = do_evict_model(name)
        self.stdout.write(f"{name}: {'evicted' if removed else 'was not cached on this node'}")


def llm_columns(status, serves):
    return {"can_run": status.can_run, "decode_tok_s": round(status.decode_tok_s, 2), "why_not": status.why_not,
            "serves": serves}


def run_state(status):
    return f"runs now (~{status.decode_tok_s:.1f} tok/s)" if status.can_run else f"cannot run now: {status.why_not}"


def choice_line(choice):
    """ "kotatsu: auto -> qwen2.5-coder-1.5b-instruct", and the LLMs it falls back from, with why."""
    passed_over = "".join(f"; {status.name} cannot run now: {status.why_not}" for status in choice.passed_over)
    return f"{choice.use}: {choice.mark} -> {choice.name}{passed_over}"


def bar_updater(bar):
    def update(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    return update
