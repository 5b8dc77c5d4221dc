import pytest

from inference.cluster.planner import GIB, ModelMemory, NodeCapacity, PlanError, Stage, plan_stages

MIB = 1024**2


def uniform_model(n_layers=30, layer_mib=100, embedding_mib=0, head_mib=0):
    return ModelMemory(tuple([layer_mib * MIB] * n_layers), embedding_mib * MIB, head_mib * MIB)


def layer_counts(stages):
    return {stage.node: stage.stop - stage.start for stage in stages}


def test_an_8_gb_and_a_16_gb_node_split_the_layers_1_to_2():
    stages = plan_stages(uniform_model(), [NodeCapacity("small", 8 * GIB), NodeCapacity("big", 16 * GIB)], n_nodes=2)

    assert layer_counts(stages) == {"big": 20, "small": 10}


def test_stages_are_contiguous_and_cover_every_layer_once():
    nodes = [NodeCapacity(f"n{i}", (i + 1) * GIB) for i in range(4)]

    stages = plan_stages(uniform_model(n_layers=30, layer_mib=10), nodes, n_nodes=4)

    assert stages[0].start == 0 and stages[-1].stop == 30
    assert all(a.stop == b.start for a, b in zip(stages, stages[1:]))
    assert all(stage.stop > stage.start for stage in stages)


def test_a_model_that_fits_one_node_stays_on_one_node():
    nodes = [NodeCapacity("a", 8 * GIB), NodeCapacity("b", 16 * GIB), NodeCapacity("c", 4 * GIB)]

    assert plan_stages(uniform_model(), nodes) == [Stage("b", 0, 30)]


def test_it_spreads_over_exactly_the_nodes_asked_for_even_when_one_would_do():
    nodes = [NodeCapacity(name, 16 * GIB) for name in ("a", "b", "c")]

    stages = plan_stages(uniform_model(), nodes, n_nodes=3)

    assert layer_counts(stages) == {"a": 10, "b": 10, "c": 10}


def test_the_first_stage_counts_the_embedding_and_the_last_the_head():
    model = uniform_model(n_layers=10, layer_mib=100, embedding_mib=300, head_mib=200)

    assert model.stage_bytes(0, 5) == 800 * MIB
    assert model.stage_bytes(5, 10) == 700 * MIB
    assert model.stage_bytes(3, 7) == 400 * MIB


@pytest.mark.parametrize("free_gib", [(1.5, 2.0, 3.0), (3.0, 0.6, 0.6), (0.5, 0.5, 4.0), (1.3, 1.3, 1.3)])
def test_it_never_gives_a_node_more_than_its_free_memory(free_gib):
    model = uniform_model(n_layers=20, layer_mib=150, embedding_mib=512, head_mib=256)
    nodes = [NodeCapacity(f"n{i}", int(gib * GIB)) for i, gib in enumerate(free_gib)]

    stages = plan_stages(model, nodes, n_nodes=3)

    free = {node.name: node.free_bytes for node in nodes}
    for stage in stages:
        assert model.stage_bytes(stage.start, stage.stop) <= free[stage.node]


def test_the_proportional_split_is_repaired_when_the_embedding_does_not_fit():
    model = uniform_model(n_layers=10, layer_mib=100, embedding_mib=1024)
    nodes = [NodeCapacity("first", int(1.3 * GIB)), NodeCapacity("second", int(1.3 * GIB))]

    stages = plan_stages(model, nodes, n_nodes=2)

    assert layer_counts(stages) == {"first": 3, "second": 7}


def test_it_names_the_shortfall_when_the_cluster_cannot_hold_the_model():
    nodes = [NodeCapacity("a", 1 * GIB), NodeCapacity("b", 1 * GIB)]

    with pytest.raises(PlanError, match=r"needs 2\.93 GiB \(weights, KV cache and working buffers\), the 2 live nodes offer 2\.00 GiB: 0\.93 GiB missing"):
        plan_stages(uniform_model(), nodes)


def test_it_refuses_more_nodes_than_are_live():
    with pytest.raises(PlanError, match="asked for 3 nodes, but 2 are live"):
        plan_stages(uniform_model(), [NodeCapacity("a", 8 * GIB), NodeCapacity("b", 8 * GIB)], n_nodes=3)


def test_measured_throughput_weights_the_split_when_asked():
    nodes = [NodeCapacity("slow", 8 * GIB, gflops=10.0), NodeCapacity("fast", 8 * GIB, gflops=20.0)]

    assert layer_counts(plan_stages(uniform_model(), nodes, n_nodes=2)) == {"slow": 15, "fast": 15}
    assert layer_counts(plan_stages(uniform_model(), nodes, n_nodes=2, weight_by_throughput=True)) == {
        "slow": 10,
        "fast": 20,
    }


def test_it_refuses_to_weight_by_throughput_a_node_never_measured():
    nodes = [NodeCapacity("measured", 8 * GIB, gflops=10.0), NodeCapacity("fresh", 8 * GIB)]

    with pytest.raises(PlanError, match="no measured GFLOP/s for fresh"):
        plan_stages(uniform_model(), nodes, n_nodes=2, weight_by_throughput=True)


def test_free_memory_wobbling_by_megabytes_keeps_the_plan():
    wobbles = [(0, 3, 1), (2, 0, 5), (4, 1, 0)]  # MB more free per node, heartbeat after heartbeat
    plans = [
        plan_stages(
            uniform_model(),
            [NodeCapacity(name, 16 * GIB + extra * 2**20) for name, extra in zip(("a", "b", "c"), extra_mb)],
            n_nodes=3,
        )
        for extra_mb in wobbles
    ]

    assert plans[0] == plans[1] == plans[2]
