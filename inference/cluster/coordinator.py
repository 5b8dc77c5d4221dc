"""Generation through a pipeline of shard servers on the cluster's live nodes.

The coordinator holds what every run over a model shares: its header and tokenizer, the plan of layer
ranges over the nodes whose heartbeats it sees (planner), and the measured round trip of decode steps
that sets their deadline. Plans count each stage's working buffers as the largest of this process's measurement
and what the nodes measured (their heartbeats carry it, and a node refusing a stage says it), since the nodes'
figure is the one their budgets are checked against. Each generation is the scheduler's token loop (inference.core.scheduler) over
a PipelineStepper, which sends the rows through the stages and survives dead nodes (pipeline_stepper).
"""
import dataclasses

from inference.cluster import pipeline_protocol as protocol
from inference.cluster.heartbeat import read_heartbeats
from inference.cluster.pipeline_stepper import ClusterStats, PipelineStepper
from inference.cluster.planner import ModelMemory, NodeCapacity, PlanError, plan_stages
from inference.cluster.shard_server import measure_working_bytes
from inference.core.engine import DEFAULT_CONTEXT_LENGTH
from inference.core.gguf_loader import embedding_and_head_bytes, layer_memory_bytes, read_gguf
from inference.core.scheduler import Generation, Scheduler
from inference.core.tokenizer import Tokenizer

REPLY_TIMEOUT_S = 2.0  # how often a waiting run looks at the heartbeats
# A decode step's deadline: this many times the measured round trip, never less than the floor.
STEP_DEADLINE_FACTOR = 10.0
# Stages share cores with other work and pause for garbage collection: below this a slow stage would
# be mistaken for a dead one, and every re-plan costs a replay of all sequences.
STEP_DEADLINE_FLOOR_S = 2.0
STEP_TIME_SMOOTHING = 0.1


def model_memory(model, context_length):
    """Planner input from a GGUF: a tied head makes the last stage hold the embedding matrix as well; the working
    buffers are measured as the shard servers measure them before they accept a stage."""
    embedding, head = embedding_and_head_bytes(model)
    last_stage_extra = head + (embedding if model.config.tied_head else 0)
    working = measure_working_bytes(model, 0, context_length)
    return ModelMemory(tuple(layer_memory_bytes(model, context_length)), embedding, last_stage_extra, working)


class Coordinator:
    def __init__(
        self,
        client,
        cluster_token,
        model_path,
        context_length=DEFAULT_CONTEXT_LENGTH,
        n_nodes=None,
        weight_by_throughput=False,
        record_plan=None,
        reply_timeout_s=REPLY_TIMEOUT_S,
        model_ref=None,
        micro_batches=None,
        pipelined_prefill=True,
    ):
        """record_plan(stages, context_length, replaces_id) -> plan id: where plans are kept (the Plan table).
        model_ref: how shard servers find the model, a catalog name their model cache resolves
        (default: model_path, for nodes that share this file system).
        micro_batches: groups the in-flight sequences travel in (default: one per stage).
        pipelined_prefill: send a prompt as one message per chunk, which the stages read as in a bucket brigade;
        False sends it whole, each stage reading all of it before the next starts (for comparison)."""
        self.client = client
        self.cluster_token = cluster_token
        self.model_ref = model_ref or str(model_path)
        self.model = read_gguf(model_path)
        self.tokenizer = Tokenizer(self.model)
        self.context_length = min(context_length, self.model.config.context_length)
        self.memory = model_memory(self.model, self.context_length)
        self.n_nodes = n_nodes
        self.weight_by_throughput = weight_by_throughput
        self.record_plan = record_plan or (lambda stages, context_length, replaces_id: None)
        self.reply_timeout_s = reply_timeout_s
        self.micro_batches = micro_batches
        self.pipelined_prefill = pipelined_prefill
        self.previous_plan = None  # (live nodes it was made for, route)
        # Nodes a run declared dead -> the beat_at of their last heartbeat then (0.0 when it had expired).
        self.marked_down = {}
        self.step_round_trip_s = None  # smoothed send-to-reply time of decode steps, over every run

    def step_deadline_s(self):
        measured = STEP_DEADLINE_FACTOR * self.step_round_trip_s if self.step_round_trip_s else 0.0
        return max(STEP_DEADLINE_FLOOR_S, measured)

    def record_step_round_trip(self, seconds):
        previous = self.step_round_trip_s
        self.step_round_trip_s = seconds if previous is None else previous + STEP_TIME_SMOOTHING * (seconds - previous)

    def generate(self, prompt_ids, max_tokens, params):
        return self.generate_batch([prompt_ids], max_tokens, params)

    def generate_batch(self, prompts, max_tokens, params):
        """A Generation whose stats also hold the plans, dead nodes and per-stage stats (ClusterStats)."""
        stats = ClusterStats()
        scheduler = Scheduler(PipelineStepper(self, stats), self.tokenizer, self.context_length)
        return Generation(scheduler, prompts, max_tokens, params, stats)

    def live_heartbeats(self):
        return {info.name: info for info in read_heartbeats(self.client, self.cluster_token)}

    def data_links(self, route):
        """(host, port) of each stage's data link as its node's heartbeat announces it; None where it names none."""
        heartbeats = self.live_heartbeats()
        links = []
        for stage in route:
            info = heartbeats.get(stage["node"])
            port = (info.memory or {}).get("data_port") if info else None
            links.append((info.host, port) if port else None)
        return links

    def mark_down(self, names):
        """Nodes a run declared dead are left out of every later plan until they beat again: a node whose link
        was cut keeps a heartbeat in Redis until it expires, and a run planned on it meanwhile would stall too.
        What waits in their inboxes belongs to the plan they were cut from, so it is dropped: a node whose
        link returns does not work through a stale plan's steps."""
        heartbeats = self.live_heartbeats()
        for name in names:
            self.marked_down[name] = heartbeats[name].beat_at if name in heartbeats else 0.0
        if names:
            self.client.delete(*[protocol.inbox_key(name) for name in names])

    def plannable_heartbeats(self):
        """(Live nodes without those marked down that have not beaten since, whether a live node was left out).
        A node's beats are compared with its own earlier beat, so clocks of different machines never are."""
        heartbeats = self.live_heartbeats()
        for name, last_beat_at in list(self.marked_down.items()):
            if name in heartbeats and heartbeats[name].beat_at > last_beat_at:
                del self.marked_down[name]  # it is back (a restored link, or it was only slow)
        plannable = [info for name, info in heartbeats.items() if name not in self.marked_down]
        return plannable, len(plannable) < len(heartbeats)

    def plan(self, excluded):
        """Stages over the live nodes not in `excluded` nor marked down: the previous plan while those are the same
        nodes (same start times) and the working buffers counted the same, since free RAM wobbles from beat to beat
        and a new split reloads every stage."""
        plannable, some_marked_down = self.plannable_heartbeats()
        candidates = [info for info in plannable if info.name not in excluded]
        if not candidates:
            raise PlanError("no live node to run the model on (every node is down or was declared dead)")
        self.learn_working_bytes(max((self.reported_working_bytes(info) for info in candidates), default=0))
        membership = (frozenset((info.name, info.started_at) for info in candidates), self.memory.working_bytes)
        if self.previous_plan and self.previous_plan[0] == membership:
            return self.previous_plan[1]
        nodes = [NodeCapacity(info.name, info.free_ram, info.gflops) for info in candidates]
        # Asked for N nodes and one died (in this run or an earlier one): spread over the survivors rather than fail.
        n_nodes = min(self.n_nodes, len(nodes)) if self.n_nodes and (excluded or some_marked_down) else self.n_nodes
        route = [stage.as_json() for stage in plan_stages(self.memory, nodes, n_nodes, self.weight_by_throughput)]
        self.previous_plan = (membership, route)
        return route

    def reported_working_bytes(self, info):
        """The working buffers a node's heartbeat says it measured for this model at this context length (0: none)."""
        reports = info.memory.get("working", []) if info.memory else []
        sizes = [size for model_ref, context_length, size in reports if (model_ref, context_length) == (self.model_ref, self.context_length)]
        return max(sizes, default=0)

    def learn_working_bytes(self, measured):
        """Plan with a node's measured working buffers when they exceed the figure planned with so far; True if so."""
        if measured <= self.memory.working_bytes:
            return False
        self.memory = dataclasses.replace(self.memory, working_bytes=measured)
        return True
