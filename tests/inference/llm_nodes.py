"""Live nodes announced in the cluster tests' own Redis database, holding the catalog's LLMs, for the tests of which
LLM serves: real heartbeats that the selectors read, no node processes (nothing is generated)."""
import pytest

from inference.catalog import install_built_in_models
from inference.cluster.heartbeat import leave_cluster, publish_heartbeat
from inference.models import ModelEntry, ModelHolding, ModelSource
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401  (a fixture llm_nodes uses)

QWEN = "qwen2.5-coder-1.5b-instruct"
SMOLLM2 = "smollm2-135m-instruct"
# Three nodes offering this much hold the 1.5B together (~1.6 GiB with three stages' working buffers); two cannot.
NODE_GIB = 0.65


class Nodes:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def announce(self, *names, free_gib=NODE_GIB, gflops=10.0):
        """Heartbeats of nodes that hold both LLMs in their caches."""
        for name in names:
            publish_heartbeat(self.client, node_info(name, free_gib=free_gib, gflops=gflops), self.token)
            for model in ModelEntry.objects.filter(name__in=[QWEN, SMOLLM2]):
                ModelHolding.objects.update_or_create(model=model, node_name=name, defaults={"sha256": model.sha256, "size": model.size})

    def leave(self, name):
        leave_cluster(self.client, name)


@pytest.fixture
def llm_nodes(db, cluster_redis_db, settings, tmp_path):
    """No node up yet, "auto" for both uses, an empty cache on this node (only the nodes' caches count)."""
    install_built_in_models(ModelEntry, ModelSource)
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    settings.LLM_ANSWER_MODEL = settings.LLM_CHAT_MODEL = "auto"
    return Nodes(cluster_redis_db, settings.CLUSTER_TOKEN)
