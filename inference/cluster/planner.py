"""Pipeline planning: which node runs which contiguous range of layers. Pure functions, no I/O.

The baseline is exo's ring memory-weighted split: each node gets a share of the layers proportional to
the memory it offers (an 8 GB and a 16 GB node split 1:2), optionally scaled by its measured matmul
throughput. The proportional split is then repaired so that no stage exceeds its node's free memory,
counting the first stage's embedding, the last stage's final norm and head, and each stage's working buffers.
The free memory is what each node offers (`node --memory`, or its available RAM): its shard server refuses
a stage beyond it, so a plan that fits here loads.
"""
from dataclasses import dataclass

GIB = 1024**3
# Free memory moves by megabytes between heartbeats; ordering nodes by it exactly would reshuffle the
# stages (and make every node load new layers) on each plan. Orders compare it in these steps.
ORDER_STEP_BYTES = GIB // 4


class PlanError(Exception):
    """The live nodes cannot hold the model as asked; the message names the shortfall."""


@dataclass(frozen=True)
class NodeCapacity:
    name: str
    free_bytes: int
    gflops: float = 0.0


@dataclass(frozen=True)
class ModelMemory:
    """Run-time bytes of a model: per layer (weights + KV cache at the planned context length),
    the embedding the first stage holds, what the last stage adds (final norm + head), and the working
    buffers every stage needs besides (measured on a forward at the context length)."""

    layer_bytes: tuple
    embedding_bytes: int
    head_bytes: int
    working_bytes: int = 0

    @property
    def n_layers(self):
        return len(self.layer_bytes)

    @property
    def total_bytes(self):
        """Weights and KV cache of the whole model."""
        return sum(self.layer_bytes) + self.embedding_bytes + self.head_bytes

    def needed_bytes(self, n_stages):
        """What the model takes spread over n_stages nodes: each holds its own working buffers."""
        return self.total_bytes + n_stages * self.working_bytes

    def stage_bytes(self, start, stop):
        first = self.embedding_bytes if start == 0 else 0
        last = self.head_bytes if stop == self.n_layers else 0
        return sum(self.layer_bytes[start:stop]) + first + last + self.working_bytes


@dataclass(frozen=True)
class Stage:
    node: str
    start: int
    stop: int

    def as_json(self):
        return {"node": self.node, "layers": [self.start, self.stop]}


def plan_stages(memory, nodes, n_nodes=None, weight_by_throughput=False):
    """Contiguous layer ranges in pipeline order, one per chosen node.

    n_nodes: spread over exactly that many nodes; None: one node when one can hold the whole model,
    otherwise every node that can hold at least one layer.
    """
    if weight_by_throughput and any(node.gflops <= 0 for node in nodes):
        unmeasured = ", ".join(node.name for node in nodes if node.gflops <= 0)
        raise PlanError(f"cannot weight by throughput: no measured GFLOP/s for {unmeasured}")
    if n_nodes is None:
        single = [node for node in nodes if node.free_bytes >= memory.needed_bytes(1)]
        if single:
            best = max(single, key=lambda node: (weight(node, weight_by_throughput), node.name))
            return [Stage(best.name, 0, memory.n_layers)]
        smallest_stage = min(memory.layer_bytes) + memory.working_bytes
        chosen = [node for node in nodes if node.free_bytes >= smallest_stage]
        if nodes and not chosen:
            raise PlanError(missing_memory_line(memory.needed_bytes(1), sum(node.free_bytes for node in nodes), len(nodes)))
    else:
        if n_nodes < 1 or n_nodes > len(nodes):
            raise PlanError(f"asked for {n_nodes} nodes, but {len(nodes)} are live")
        if n_nodes > memory.n_layers:
            raise PlanError(f"asked for {n_nodes} nodes, but the model has only {memory.n_layers} layers")
        chosen = sorted(nodes, key=lambda node: ordering_key(node, weight_by_throughput))[:n_nodes]
    if not chosen:
        raise PlanError("no live node to run the model on")
    # The biggest node first: the first stage also holds the embedding, usually the largest tensor.
    chosen = sorted(chosen, key=lambda node: ordering_key(node, weight_by_throughput=False))
    offered = sum(node.free_bytes for node in chosen)
    if memory.needed_bytes(len(chosen)) > offered:
        raise PlanError(missing_memory_line(memory.needed_bytes(len(chosen)), offered, len(chosen)))
    boundaries = proportional_boundaries(memory.n_layers, [weight(node, weight_by_throughput) for node in chosen])
    boundaries = fit_to_memory(memory, chosen, boundaries)
    return [Stage(node.name, start, stop) for node, start, stop in zip(chosen, boundaries, boundaries[1:])]


def missing_memory_line(needed, offered, n_nodes):
    """The one line a plan that does not fit says: "the model needs 1.30 GiB (weights, KV cache and working
    buffers), the 3 live nodes offer 0.90 GiB: 0.40 GiB missing"."""
    nodes = "the live node offers" if n_nodes == 1 else f"the {n_nodes} live nodes offer"
    return (
        f"the model needs {needed / GIB:.2f} GiB (weights, KV cache and working buffers), {nodes} {offered / GIB:.2f} GiB: "
        f"{(needed - offered) / GIB:.2f} GiB missing"
    )


def weight(node, weight_by_throughput):
    return node.free_bytes * (node.gflops if weight_by_throughput else 1.0)


def ordering_key(node, weight_by_throughput):
    """Heavier nodes first, names breaking ties; free memory counted in whole ORDER_STEP_BYTES."""
    steps = node.free_bytes // ORDER_STEP_BYTES
    return (-steps * (node.gflops if weight_by_throughput else 1.0), node.name)


def proportional_boundaries(n_layers, weights):
    """[0, b1, ..., n_layers]: stage i gets layers b_i..b_{i+1}-1, at least one each."""
    total = sum(weights)
    boundaries, cumulative = [0], 0.0
    for index, share in enumerate(weights[:-1]):
        cumulative += share
        lowest = boundaries[-1] + 1
        highest = n_layers - (len(weights) - 1 - index)
        boundaries.append(min(max(round(n_layers * cumulative / total), lowest), highest))
    return boundaries + [n_layers]


def fit_to_memory(memory, nodes, boundaries):
    """Move boundary layers from stages over their node's memory to neighbours with room."""
    boundaries = list(boundaries)

    def spare(index):
        return nodes[index].free_bytes - memory.stage_bytes(boundaries[index], boundaries[index + 1])

    for _ in range(memory.n_layers * len(nodes) * 2):
        over = [index for index in range(len(nodes)) if spare(index) < 0]
        if not over:
            return boundaries
        index = over[0]
        neighbours = []
        if index + 1 < len(nodes):
            neighbours.append((spare(index + 1), index + 1))
        if index > 0:
            neighbours.append((spare(index - 1), index - 1))
        moved = False
        for _, neighbour in sorted(neighbours, reverse=True):
            boundary = index + 1 if neighbour > index else index
            step = -1 if neighbour > index else 1
            if boundaries[index + 1] - boundaries[index] > 1:
                boundaries[boundary] += step
                moved = True
                break
        if not moved:
            break
    stage = next(index for index in range(len(nodes)) if spare(index) < 0)
    raise PlanError(
        f"node {nodes[stage].name} cannot hold layers {boundaries[stage]}..{boundaries[stage + 1] - 1}: "
        f"{-spare(stage) / GIB:.2f} GiB short, and its neighbours have no room to take them"
    )
