"""A model fetch asked of a node is a row before it is a task message: a fetch whose message Redis lost is sent
again by beat's resend sweep and completes once, and a fetch whose message arrives twice runs once."""
import hashlib
import os
import time

from django.utils import timezone

from inference.models import ModelEntry, ModelFetch, ModelHolding
from inference.plumbing.leases import current_holder
from inference.plumbing.redis import redis_client
from inference.services import do_request_fetches, do_run_fetch
from inference.tasks import fetch_model
from ingest import services as ingest_services
from ingest.tasks import resend_lost_work

FETCHED_WITHIN_S = 90


def catalog_model_at(tmp_path, name):
    weights = tmp_path / f"{name}.gguf"
    weights.write_bytes(os.urandom(1024 * 1024))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    model = ModelEntry.objects.create(name=name, kind="llm", format="gguf", size=1024 * 1024, sha256=digest)
    model.sources.create(position=0, kind="path", location=str(weights))
    return model, digest


def test_a_fetch_whose_message_redis_lost_is_sent_again_by_the_sweep_and_completes_once(start_worker, tmp_path, settings):
    settings.INGEST_RESEND_AFTER_S = 3600  # only the Redis run change may send it again within this test
    model, digest = catalog_model_at(tmp_path, "lost-fetch")
    start_worker("lost-fetch-node", MODEL_CACHE_DIR=tmp_path / "node-cache", MODEL_CACHE_PEER_HOST="127.0.0.1")
    (fetch_id,) = do_request_fetches(model.name, ["lost-fetch-node"]).values()  # recorded; its message never sent
    ingest_services.broker_lost_its_messages()
    resend_lost_work()
    assert ModelFetch.objects.get(pk=fetch_id).state == ModelFetch.PENDING, "sent again without a reason"

    redis_client().delete(ingest_services.BROKER_RUN_KEY)  # as Redis restarted without its data
    resend_lost_work()
    deadline = time.monotonic() + FETCHED_WITHIN_S
    while not ModelFetch.objects.get(pk=fetch_id).is_finished:
        assert time.monotonic() < deadline, "the fetch sent again did not complete"
        time.sleep(0.5)

    fetch = ModelFetch.objects.get(pk=fetch_id)
    assert (fetch.state, fetch.outcome, fetch.holder) == (ModelFetch.DONE, str(tmp_path / "node-cache" / "blobs" / digest), "")
    assert list(ModelHolding.objects.filter(model=model).values_list("node_name", flat=True)) == ["lost-fetch-node"]
    redis_client().delete(ingest_services.BROKER_RUN_KEY)
    resend_lost_work()
    assert ModelFetch.objects.get(pk=fetch_id).sent_at == fetch.sent_at, "a finished fetch was sent again"


def test_a_fetch_whose_message_arrives_twice_runs_once(transactional_db, tmp_path, settings):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    model, digest = catalog_model_at(tmp_path, "twice-sent")
    (fetch_id,) = do_request_fetches(model.name, [settings.NODE_NAME]).values()

    ModelFetch.objects.filter(pk=fetch_id).update(holder=current_holder(), alive_at=timezone.now())  # the first delivery, running
    assert fetch_model(fetch_id) is None
    assert not (tmp_path / "cache" / "blobs" / digest).exists()

    ModelFetch.objects.filter(pk=fetch_id).update(holder="")
    assert fetch_model(fetch_id) == str(tmp_path / "cache" / "blobs" / digest)
    assert fetch_model(fetch_id) is None  # the second delivery finds it done
    assert ModelFetch.objects.get(pk=fetch_id).state == ModelFetch.DONE
    assert do_run_fetch(fetch_id) is None
