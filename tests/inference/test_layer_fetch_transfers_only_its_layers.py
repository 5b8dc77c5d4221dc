"""A node running layers 0-9 of SmolLM2's 30 copies the GGUF header and those layers' tensors from a
peer, not the whole file."""
import pytest
from django.conf import settings as django_settings

from inference.cache.peer_server import PeerServer
from inference.cache.peers import PEER_KEY_PREFIX
from inference.cache.store import BlobStore
from inference.core.gguf_loader import read_gguf, stage_tensor_names
from inference.models import ModelEntry, ModelHolding
from inference.plumbing.redis import redis_client
from inference.services import do_fetch_model, do_fetch_model_layers

MODEL = "smollm2-135m-instruct"


@pytest.fixture
def peer_holding_smollm2(db):
    """A peer serving the shared test cache, known to Redis and to the holdings table."""
    full = do_fetch_model(MODEL)
    server = PeerServer(BlobStore(django_settings.MODEL_CACHE_DIR), django_settings.CLUSTER_TOKEN, host="127.0.0.1").start()
    client = redis_client(django_settings.REDIS_URL)
    client.set(f"{PEER_KEY_PREFIX}peer-with-smollm2", f"http://127.0.0.1:{server.port}", ex=60)
    ModelHolding.objects.create(
        model=ModelEntry.objects.get(name=MODEL), node_name="peer-with-smollm2", sha256=full.name, size=full.stat().st_size
    )
    yield full, server
    client.delete(f"{PEER_KEY_PREFIX}peer-with-smollm2")
    server.stop()


def test_layers_0_to_9_of_30_transfer_at_most_40_percent_of_the_file(peer_holding_smollm2, settings, tmp_path):
    full, server = peer_holding_smollm2
    settings.MODEL_CACHE_DIR = tmp_path / "cache"

    shard = do_fetch_model_layers(MODEL, range(0, 10))

    assert server.bytes_sent <= 0.40 * full.stat().st_size
    model = read_gguf(shard)
    assert model.config.n_layers == 30
    wanted = stage_tensor_names(model, range(0, 10), with_embedding=False, with_head=False)
    with open(full, "rb") as original, open(shard, "rb") as partial:
        for name in wanted + ["blk.10.ffn_up.weight"]:
            info = model.tensors[name]
            original.seek(info.offset)
            partial.seek(info.offset)
            same = original.read(info.n_bytes) == partial.read(info.n_bytes)
            assert same == (name in wanted), name
