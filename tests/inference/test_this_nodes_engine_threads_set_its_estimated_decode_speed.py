"""With no cluster, this node's engine runs the whole model with KOTATSU_THREADS threads (the web process `make up`
starts gets half the cores), and the decode speed "auto" compares with the threshold follows them: one thread
estimates half the tokens per second of two. `models list --json` in a process of each setting, on the model cache
that holds both LLMs."""
import json
import subprocess

import pytest

from tests.conftest import PROJECT_DIR, child_env, manage_py
from tests.inference.cluster_helpers import cluster_redis_db  # noqa: F401  (a fixture)
from tests.inference.llm_nodes import QWEN, SMOLLM2


def estimates(threads, redis_url):
    listing = subprocess.run(
        manage_py("models", "list", "--json"), env=child_env(KOTATSU_THREADS=threads, REDIS_URL=redis_url),
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600, check=True,
    )
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    return {name: rows[name]["decode_tok_s"] for name in (QWEN, SMOLLM2) if rows[name]["can_run"]}


@pytest.mark.django_db(transaction=True)
def test_one_thread_halves_the_estimate_of_two(cluster_redis_db, settings):
    from inference.services import do_fetch_model

    for name in (QWEN, SMOLLM2):
        do_fetch_model(name)  # this node holds both (the shared model cache of the tests)
    one, two = estimates(1, settings.REDIS_URL), estimates(2, settings.REDIS_URL)
    assert set(one) == set(two) == {QWEN, SMOLLM2}
    for name in one:
        assert one[name] == pytest.approx(two[name] / 2, rel=0.02)
    assert two[QWEN] == pytest.approx(7.0, rel=0.1)  # the engine's measured decode of the 1.5B on two threads
