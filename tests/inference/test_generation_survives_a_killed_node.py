from inference.core.sampling import SamplingParams
from tests.inference.cluster_helpers import generate_disrupting_a_stage
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)

MAX_TOKENS = 20


def test_a_node_killed_mid_generation_leaves_the_answer_identical(cluster_lab):
    run = generate_disrupting_a_stage(
        cluster_lab, "Tell me a story about a cat.", MAX_TOKENS, SamplingParams(), after_tokens=6, stage=1,
        disrupt=cluster_lab.kill_node,
    )

    generation = run.generation
    assert generation.stats.dead_nodes == [run.victim]
    assert len(generation.stats.plans) == 2
    assert run.victim not in [stage["node"] for stage in generation.stats.plans[-1]]
    assert [token for token in run.streamed if token is not None] == generation.results[0].token_ids
    assert generation.results[0].token_ids == run.undisturbed
    assert len(generation.results[0].token_ids) == MAX_TOKENS
