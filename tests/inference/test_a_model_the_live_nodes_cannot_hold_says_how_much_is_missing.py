"""When the live nodes together offer less than the model needs (weights, KV cache at the context length and each
stage's working buffers), the plan fails with one line saying how much is missing, before any node loads anything."""
import re

import pytest
from django.conf import settings

from inference.cluster.coordinator import Coordinator
from inference.cluster.heartbeat import publish_heartbeat
from inference.cluster.planner import GIB, PlanError
from inference.core.sampling import SamplingParams
from inference.model_files import DEFAULT_MODEL, resolve_model_path
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_three_nodes_offering_a_third_of_the_model_are_told_how_much_is_missing(cluster_redis_db):
    coordinator = Coordinator(
        cluster_redis_db, settings.CLUSTER_TOKEN, resolve_model_path(DEFAULT_MODEL, settings.MODEL_CACHE_DIR), context_length=512
    )
    needed = coordinator.memory.needed_bytes(3)
    for name in ("alpha", "beta", "gamma"):
        publish_heartbeat(cluster_redis_db, node_info(name, free_gib=needed / 4 / GIB), settings.CLUSTER_TOKEN)

    with pytest.raises(PlanError) as refusal:
        list(coordinator.generate([1, 2, 3], 4, SamplingParams()))

    offered = 3 * int(needed / 4)
    assert str(refusal.value) == (
        f"the model needs {needed / GIB:.2f} GiB (weights, KV cache and working buffers), the 3 live nodes offer "
        f"{offered / GIB:.2f} GiB: {(needed - offered) / GIB:.2f} GiB missing"
    )
    assert re.fullmatch(r"the model needs \d\.\d\d GiB .*: \d\.\d\d GiB missing", str(refusal.value))
