import json
import subprocess

from django.conf import settings

from inference.model_files import DEFAULT_MODEL, resolve_model_path
from inference.models import Plan
from tests.conftest import PROJECT_DIR, child_env, manage_py
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)

PROMPT = "The three primary colors are"


def generate(model_path, *flags, redis_url=None):
    env = child_env(**({"REDIS_URL": redis_url} if redis_url else {}))
    completed = subprocess.run(
        manage_py("generate", "--model", str(model_path), "--prompt", PROMPT, "--max-tokens", "16", "--context", "512", "--json", *flags),
        env=env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_three_nodes_give_the_greedy_tokens_of_the_single_node_engine(cluster_lab):
    cluster_lab.start_nodes("alpha", "beta", "gamma")

    # A path, not the catalog name: nodes in network namespaces cannot reach a PostgreSQL test
    # database on 127.0.0.1, which the model cache's name lookup needs.
    model_path = resolve_model_path(DEFAULT_MODEL, settings.MODEL_CACHE_DIR)
    single = generate(model_path)
    clustered = generate(model_path, "--cluster", "--nodes", "3", redis_url=cluster_lab.redis_url)

    assert len(single["token_ids"]) == 16
    assert clustered["token_ids"] == single["token_ids"]
    assert clustered["text"] == single["text"]
    assert [stage["layers"] for stage in clustered["plan"]] == [[0, 10], [10, 20], [20, 30]]
    assert sorted(stage["node"] for stage in clustered["plan"]) == ["alpha", "beta", "gamma"]
    # The first token comes from the prompt's forward pass; stage stats count the 15 decode steps after it.
    assert all(stage["tokens"] == 15 and stage["compute_ms"] > 0 for stage in clustered["stages"])
    assert clustered["stages"][1]["bytes_in"] == clustered["stages"][0]["bytes_out"] > 0
    plan = Plan.objects.get()
    assert plan.stages == clustered["plan"] and plan.context_length == 512  # --context reaches the plan
    assert clustered["dead_nodes"] == [] and clustered["recoveries"] == []
