"""Reads of the inference app."""
import logging
import random
from dataclasses import dataclass

import psutil
from django.conf import settings

from inference.cache.peers import live_peer_urls
from inference.cache.store import BlobStore
from inference.cluster.heartbeat import left_node_names, read_heartbeats
from inference.cluster.planner import ModelMemory, NodeCapacity, PlanError, plan_stages
from inference.cluster.shard_server import rolling_stage_stats
from inference.catalog import DEFAULT_MODEL
from inference.models import ModelEntry, ModelHolding, ModelMark, Node, Plan
from inference.plumbing.redis import redis_client

log = logging.getLogger(__name__)


def live_nodes():
    """Nodes whose heartbeat was current at the last sync (services.do_sync_nodes), by name."""
    return list(Node.objects.filter(status=Node.UP))


def all_nodes():
    return list(Node.objects.all())


def nodes_as_heartbeats_say(client=None):
    """Every node the cluster has seen, as the heartbeats in Redis describe it now, by name; nothing is saved.

    Returns (nodes, changed): `changed` are those whose row differs from Redis (new, beating, or gone
    since the last services.do_sync_nodes), for that service to save."""
    client = client or redis_client()
    heartbeats = read_heartbeats(client, settings.CLUSTER_TOKEN)
    nodes = {node.name: node for node in Node.objects.all()}
    changed = []
    for info in heartbeats:
        node = nodes.setdefault(info.name, Node(name=info.name))
        node.take_heartbeat(info, rolling_stage_stats(client, info.name))
        changed.append(node)
    beating, left = {info.name for info in heartbeats}, left_node_names(client)
    for node in nodes.values():
        if node.status == Node.UP and node.name not in beating:
            node.lose_heartbeat(left_cleanly=node.name in left)
            changed.append(node)
    return sorted(nodes.values(), key=lambda node: node.name), changed


def recent_plans(limit=20):
    return list(Plan.objects.all()[:limit])


def live_peers_holding(model, client):
    """[(node name, cache URL, sha256)] of the other live nodes holding `model`, in random order so
    that many nodes asking at once spread over the holders."""
    urls = live_peer_urls(client)
    holders = [
        (holding.node_name, urls[holding.node_name], holding.sha256)
        for holding in ModelHolding.objects.filter(model=model).exclude(node_name=settings.NODE_NAME)
        if holding.node_name in urls
    ]
    random.shuffle(holders)
    return holders


def model_catalog():
    """Every catalog model with its holdings, for the admin and `models list`."""
    return list(ModelEntry.objects.prefetch_related("holdings", "sources"))


def model_store():
    """This node's model cache."""
    return BlobStore(settings.MODEL_CACHE_DIR)


def cached_model_names():
    """Names of the models this node's cache holds."""
    return {cached.name for cached in model_store().cached_models()}



# ---------------------------------------------------------------- which LLM serves a use

# Decode speed model: a decode step of a stage costs its weight bytes read plus a fixed cost per layer. The two costs
# are fitted to this project's engine decoding SmolLM2 (47.6 tok/s) and Qwen2.5-Coder-1.5B (7.0 tok/s) alone on the
# 2-core reference VM (bench/RESULTS.md, issue 12; bench/model_choice.py compares them with a fresh measurement). A
# node's calibration (GFLOP/s in its heartbeat) swings with the load it starts under, so it only ranks nodes: the
# fastest live one counts as the reference, slower ones are scaled down by their ratio to it. Hops between stages cost
# what bench/pipeline.py measures per hop.
DECODE_SECONDS_PER_BYTE = 1 / 7.36e9
DECODE_SECONDS_PER_LAYER = 0.263e-3
# The threads the engine decoded with for those figures; this node's engine runs with KOTATSU_THREADS (the web process
# `make up` starts gets half the cores), and decoding is compute-bound (unpacking weights), so it scales with them.
REFERENCE_THREADS = 2
HOP_SECONDS = 1.1e-3
# Both ends of the pipeline run on cluster nodes when at least this many are live, else this node runs the whole model
# (assistant.generation.chat_model decides the same way).
CLUSTER_MIN_NODES = 2


@dataclass(frozen=True)
class LLMStatus:
    """Whether a catalog LLM can run now, and how fast it would decode."""

    name: str
    size: int
    can_run: bool  # held by a live node (or this one) and the live nodes hold it in memory
    decode_tok_s: float  # estimated for the plan it would run with; 0.0 when it cannot run
    why_not: str  # one line when it cannot run
    held: bool  # some node's cache holds it, live or not

    def is_interactive(self):
        return self.can_run and self.decode_tok_s >= settings.LLM_INTERACTIVE_TOK_S


@dataclass(frozen=True)
class ServingChoice:
    use: str
    name: str  # the LLM that serves the use now
    mark: str  # "auto" or the marked LLM's name
    passed_over: tuple  # (LLMStatus, ...) LLMs it would rather be, larger and held, that cannot serve now


def llm_statuses(client=None):
    """Every catalog LLM, the largest first, as the live nodes could run it now."""
    heartbeats = read_heartbeats(client or redis_client(), settings.CLUSTER_TOKEN)
    live = {info.name for info in heartbeats}
    cached_here = cached_model_names()
    speed = 1.0
    if len(heartbeats) >= CLUSTER_MIN_NODES:
        nodes = [NodeCapacity(info.name, info.free_ram, info.gflops) for info in heartbeats]
    else:
        from inference.core.kernels import THREADS  # the engine's (numba), loaded only for this node's

        nodes, speed = [this_node_capacity()], THREADS / REFERENCE_THREADS
    models = ModelEntry.objects.filter(kind="llm").prefetch_related("holdings").order_by("-size", "name")
    return [llm_status(model, nodes, live, cached_here, speed) for model in models]


def this_node_capacity():
    """This node running the whole model in this process, with the memory the machine has available now."""
    return NodeCapacity(settings.NODE_NAME, psutil.virtual_memory().available)


def llm_status(model, nodes, live, cached_here, speed=1.0):
    """speed: how much faster than the reference the nodes' engines run (this node's threads)."""
    holders = {holding.node_name for holding in model.holdings.all()}
    held = bool(holders) or model.name in cached_here

    def cannot(why):
        return LLMStatus(model.name, model.size, False, 0.0, why, held)

    if not (holders & live or model.name in cached_here):
        return cannot(f"no live node holds it (models pull {model.name})")
    if not model.profile:
        return cannot("its run-time size is not known yet: pull it once on any node")
    memory = profile_memory(model.profile)
    try:
        stages = plan_stages(memory, nodes)
    except PlanError as error:
        return cannot(str(error))
    decode_tok_s = speed * estimated_decode_tok_s(model.profile, stages, {node.name: node.gflops for node in nodes})
    return LLMStatus(model.name, model.size, True, decode_tok_s, "", held)


def profile_memory(profile):
    return ModelMemory(
        tuple(profile["layer_bytes"]), profile["embedding_bytes"], profile["head_bytes"], profile["working_bytes"]
    )


def estimated_decode_tok_s(profile, stages, gflops_by_node):
    """Tokens per second one sequence decodes at over `stages` (planner Stages), from the weight bytes and layers each
    stage reads per token and its node's measured GFLOP/s relative to the fastest node's."""
    weights = [layer - profile["kv_bytes_per_layer"] for layer in profile["layer_bytes"]]
    fastest = max(gflops_by_node.values(), default=0.0)
    seconds = HOP_SECONDS * len(stages) if len(stages) > 1 else 0.0
    for stage in stages:
        read = sum(weights[stage.start : stage.stop]) + (profile["head_bytes"] if stage.stop == len(weights) else 0)
        reference_seconds = read * DECODE_SECONDS_PER_BYTE + (stage.stop - stage.start) * DECODE_SECONDS_PER_LAYER
        gflops = gflops_by_node.get(stage.node, 0.0)
        seconds += reference_seconds * (fastest / gflops if gflops > 0 and fastest > 0 else 1.0)
    return 1.0 / seconds


def model_mark(use):
    """"auto" or the LLM's name marked for the use: the admin's (or `models use`) mark, else the setting."""
    mark = ModelMark.objects.select_related("model").filter(use=use).first()
    if mark is not None:
        return mark.model.name if mark.model else ModelMark.AUTO
    return settings.LLM_ANSWER_MODEL if use == ModelMark.ANSWERS else settings.LLM_CHAT_MODEL


def serving_choice(use, statuses=None):
    """Which LLM serves `use` (ModelMark.ANSWERS or CHAT) now, and which ones it would rather be.

    A marked LLM serves while it can run, whatever its speed. "auto" takes the largest LLM the live nodes run at an
    interactive speed (settings.LLM_INTERACTIVE_TOK_S), else the fastest one they can run. An LLM that cannot run
    (its nodes left) hands over to the largest smaller one that can; with none known to run, DEFAULT_MODEL serves
    (fetched on first use, as before any was pulled)."""
    mark = model_mark(use)
    statuses = llm_statuses() if statuses is None else statuses
    runnable = [status for status in statuses if status.can_run]
    if mark == ModelMark.AUTO:
        interactive = [status for status in runnable if status.is_interactive()]
        chosen = interactive[0] if interactive else max(runnable, key=lambda status: status.decode_tok_s, default=None)
        name = chosen.name if chosen else DEFAULT_MODEL
        passed_over = [s for s in statuses if s.held and not s.can_run and (chosen is None or s.size > chosen.size)]
        return ServingChoice(use, name, mark, tuple(passed_over))
    marked = next((status for status in statuses if status.name == mark), None)
    if marked is None or marked.can_run:
        return ServingChoice(use, mark, mark, ())
    smaller = [status for status in runnable if status.size < marked.size]
    return ServingChoice(use, smaller[0].name if smaller else mark, mark, (marked,) if smaller else ())


# The choice each use had when this process last asked, to say once when it changes.
last_choices = {}


def serving_model(use):
    """The name of the LLM that serves `use` (ModelMark.ANSWERS: grounded answers; ModelMark.CHAT: plain chat) now;
    a change from this process's previous answer is logged with the reason (nodes left or joined, a new mark)."""
    choice = serving_choice(use)
    previous = last_choices.get(use)
    if previous is not None and previous != choice.name:
        reasons = "; ".join(f"{status.name} cannot run now: {status.why_not}" for status in choice.passed_over)
        log.warning("%s: %s now serves instead of %s%s", use, choice.name, previous, f" ({reasons})" if reasons else "")
    last_choices[use] = choice.name
    return choice.name
