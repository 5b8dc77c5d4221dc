from inference.core.sampling import SamplingParams
from tests.inference.cluster_helpers import generate_disrupting_a_stage
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)

SAMPLED = SamplingParams(temperature=0.9, top_p=0.95, seed=20261121)


def test_a_seeded_sampled_generation_continues_with_the_same_draws_after_a_node_is_killed(cluster_lab):
    run = generate_disrupting_a_stage(
        cluster_lab, "Write a poem about the sea.", 24, SAMPLED, after_tokens=8,
        stage=2,  # the last stage, which holds the sampler
        disrupt=cluster_lab.kill_node,
    )

    generation = run.generation
    assert generation.stats.dead_nodes == [run.victim]
    assert [token for token in run.streamed if token is not None] == generation.results[0].token_ids
    assert generation.results[0].token_ids == run.undisturbed
