"""Pipeline planning: which node runs which contiguous range of layers. Pure functions, no I/O.

The baseline is exo's ring memory-weighted split: each node gets a share of the layers proportional to
the memory it offers (an 8 GB and a 16 GB node split 1:2), optionally scaled by its measured matmul
throughput. The proportional split is then repaired so that no stage exceeds its node's free memory,
counting the first stage's embedding and the last stage's final norm and head.
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
    the embedding the first stage holds, and what the last stage adds (final norm + head)."""

    layer_bytes: tuple
    embedding_bytes: int
    head_bytes: int

    @property
    def n_layers(self):
        return len(self.layer_bytes)

    @property
    def total_bytes(self):
        return sum(self.layer_bytes) + self.embedding_bytes + self.head_bytes

    def stage_bytes(self, start, stop):
        first = self.embedding_bytes if start == 0 else 0
        last = self.head_bytes if stop == self.n_layers else 0
        return sum(self.layer_bytes[start:stop]) + first + last


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
        single = [node for node in nodes if node.free_bytes >= memory.total_bytes]
        if single:
            best = max(single, key=lambda node: (weight(node, weight_by_throughput), node.name))
            return [Stage(best.name, 0, memory.n_layers)]
        smallest_layer = min(memory.layer_bytes)
        chosen = [node for node in nodes if node.free_bytes >= smallest_layer]
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
    if memory.total_bytes > offered:
        raise PlanError(
            f"the model needs {memory.total_bytes / GIB:.2f} GiB (weights + KV cache) but the "
            f"{len(chosen)} live node(s) offer {offered / GIB:.2f} GiB: "
            f"{(memory.total_bytes - offered) / GIB:.2f} GiB short"
        )
    boundaries = proportional_boundaries(memory.n_layers, [weight(node, weight_by_throughput) for node in chosen])
    boundaries = fit_to_memory(memory, chosen, boundaries)
    return [Stage(node.name, start, stop) for node, start, stop in zip(chosen, boundaries, boundaries[1:])]


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
