"""Three nodes want the same model at the same moment: one fetches it from the origin, the others copy it."""
import hashlib
import os

from inference.plumbing.queues import node_queue
from inference.cache.store import sha256_of_file
from inference.models import ModelEntry, ModelHolding
from inference.services import do_request_fetches
from inference.tasks import fetch_model
from tests.inference.http_origin import Origin

NODES = ["cache-a", "cache-b", "cache-c"]


def test_three_nodes_end_up_with_the_model_while_the_origin_serves_it_once(start_worker, tmp_path):
    payload = os.urandom(24 * 1024 * 1024)
    digest = hashlib.sha256(payload).hexdigest()
    # Slow enough that the three requests overlap with the origin download.
    origin = Origin(payload, bytes_per_second=12 * 1024 * 1024)
    model = ModelEntry.objects.create(name="shared-model", kind="llm", format="gguf", size=len(payload), sha256=digest)
    model.sources.create(position=0, kind="url", location=origin.url)
    for node in NODES:
        start_worker(node, MODEL_CACHE_DIR=tmp_path / node, MODEL_CACHE_PEER_HOST="127.0.0.1")

    fetch_ids = do_request_fetches(model.name, NODES)
    results = [fetch_model.apply_async(args=[fetch_ids[node]], queue=node_queue(node)) for node in NODES]
    paths = [result.get(timeout=180) for result in results]

    origin.stop()
    assert len(origin.get_requests()) == 1
    for node, path in zip(NODES, paths):
        assert path == str(tmp_path / node / "blobs" / digest)
        assert sha256_of_file(path) == digest
    assert sorted(ModelHolding.objects.filter(model=model).values_list("node_name", flat=True)) == NODES
