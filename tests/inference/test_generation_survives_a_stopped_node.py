from inference.core.sampling import SamplingParams
from tests.inference.cluster_helpers import generate_disrupting_a_stage
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)


def test_a_node_that_stops_answering_mid_generation_is_declared_dead_and_the_answer_is_identical(cluster_lab):
    run = generate_disrupting_a_stage(
        cluster_lab, "Tell me a story about a cat.", 20, SamplingParams(), after_tokens=6, stage=1,
        disrupt=cluster_lab.pause_node,  # SIGSTOP: the process hangs, its inbox fills, nothing answers
    )

    generation = run.generation
    assert generation.stats.dead_nodes == [run.victim]
    # Found by the step deadline and an unanswered ping, before its heartbeat went stale.
    assert generation.stats.recoveries[0]["cause"].startswith("no reply by the")
    assert run.victim not in [stage["node"] for stage in generation.stats.plans[-1]]
    assert [token for token in run.streamed if token is not None] == generation.results[0].token_ids
    assert generation.results[0].token_ids == run.undisturbed
