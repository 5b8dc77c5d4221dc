from django.conf import settings

from inference.coordinator import Coordinator
from inference.engine import Engine
from inference.model_files import DEFAULT_MODEL, resolve_model_path
from inference.sampling import SamplingParams
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)

MAX_TOKENS = 20
KILL_AFTER_TOKENS = 6


def test_a_node_killed_mid_generation_leaves_the_answer_identical(cluster_lab):
    cluster_lab.start_nodes("alpha", "beta", "gamma")
    model_path = resolve_model_path(DEFAULT_MODEL, settings.MODEL_CACHE_DIR)
    coordinator = Coordinator(cluster_lab.client, settings.CLUSTER_TOKEN, model_path, n_nodes=3)
    prompt = coordinator.tokenizer.encode_chat([{"role": "user", "content": "Tell me a story about a cat."}])

    generation = coordinator.generate(prompt, MAX_TOKENS, SamplingParams())
    streamed = []
    for delta in generation:
        streamed.append(delta.token_id)
        if len(streamed) == KILL_AFTER_TOKENS:
            victim = generation.route[1]["node"]
            cluster_lab.kill_node(victim)

    undisturbed = Engine(model_path).generate(prompt, MAX_TOKENS, SamplingParams())
    list(undisturbed)
    assert generation.stats.dead_nodes == [victim]
    assert len(generation.stats.plans) == 2
    assert victim not in [stage["node"] for stage in generation.stats.plans[-1]]
    assert [token for token in streamed if token is not None] == generation.results[0].token_ids
    assert generation.results[0].token_ids == undisturbed.results[0].token_ids
    assert len(generation.results[0].token_ids) == MAX_TOKENS
