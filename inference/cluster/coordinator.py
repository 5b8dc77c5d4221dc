"""Generation through a pipeline of shard servers on the cluster's live nodes, surviving dead nodes.

The coordinator plans layer ranges over the nodes whose heartbeats it sees (planner), has each
shard server load its range, then drives every sequence: token ids go to the first stage, hidden
states travel stage to stage through Redis, and the last stage replies with the sampled token.

Every message in flight has a deadline: a decode step gets STEP_DEADLINE_FACTOR times the measured
round trip of decode steps (never less than STEP_DEADLINE_FLOOR_S), a prefill or replay that much per
forward call it needs. When the deadline passes without a reply, the coordinator pings the stages
through their inboxes; a stage that does not answer in time is declared dead, and so is one whose
heartbeat has gone stale. The coordinator then re-plans over the survivors and rebuilds every
unfinished sequence by replaying its prompt and the tokens generated so far (as Petals does). The
replay repeats the original computation exactly, prompt blocks first and then one decode step per
generated token, so the rebuilt KV caches are bit-identical and greedy output equals an undisturbed
run; a sampled sequence carries its random generator's state, so it draws what it would have drawn.
"""
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field

import numpy as np

from inference.cluster import pipeline_protocol as protocol
from inference.core.engine import DEFAULT_CONTEXT_LENGTH, PREFILL_BLOCK_TOKENS, GenerationStats, SequenceResult, accept_token
from inference.core.gguf_loader import embedding_and_head_bytes, layer_memory_bytes, read_gguf
from inference.cluster.heartbeat import read_heartbeats
from inference.cluster.planner import ModelMemory, NodeCapacity, PlanError, plan_stages
from inference.core.tokenizer import IncrementalDecoder, Tokenizer

logger = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 2.0  # how often a waiting coordinator looks at the heartbeats
HEARTBEAT_STALE_S = 6.0
STEP_DEADLINE_FACTOR = 10.0
# Stages share cores with other work and pause for garbage collection: below this a slow stage would
# be mistaken for a dead one, and every re-plan costs a replay of all sequences.
STEP_DEADLINE_FLOOR_S = 2.0
# A prefill or replay gets one step's deadline per chunk it runs and one more per this many prompt rows.
PREFILL_ROWS_PER_STEP = 16
STEP_TIME_SMOOTHING = 0.1
MIN_BLPOP_TIMEOUT_S = 0.01  # Redis reads a timeout of 0 as "block forever"
# Stages that answer pings but return nothing for this long: the run fails instead of waiting forever.
SILENT_STAGE_LIMIT_S = 300.0


class ClusterError(Exception):
    """The cluster cannot run or finish the generation; the message says why."""


def model_memory(model, context_length):
    """Planner input from a GGUF: a tied head makes the last stage hold the embedding matrix as well."""
    embedding, head = embedding_and_head_bytes(model)
    last_stage_extra = head + (embedding if model.config.tied_head else 0)
    return ModelMemory(tuple(layer_memory_bytes(model, context_length)), embedding, last_stage_extra)


@dataclass
class StageStats:
    node: str
    layers: list
    tokens: int = 0
    compute_ms: float = 0.0
    wait_ms: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    batch_rows: int = 0

    def add(self, trace):
        self.tokens += 1
        self.compute_ms += trace["compute_ms"]
        self.wait_ms += trace["wait_ms"]
        self.bytes_in += trace["bytes_in"]
        self.bytes_out += trace["bytes_out"]
        self.batch_rows += trace["batch"]

    def per_token(self):
        n = max(self.tokens, 1)
        return {
            "node": self.node,
            "layers": self.layers,
            "tokens": self.tokens,
            "compute_ms": round(self.compute_ms / n, 3),
            "wait_ms": round(self.wait_ms / n, 3),
            "bytes_in": self.bytes_in // n,
            "bytes_out": self.bytes_out // n,
            "batch": round(self.batch_rows / n, 2),  # rows of the forward calls this stage's tokens went through
        }


@dataclass
class ClusterStats(GenerationStats):
    plans: list = field(default_factory=list)  # every plan used, the last one current
    dead_nodes: list = field(default_factory=list)
    stages: list = field(default_factory=list)  # StageStats of the current plan, decode steps only
    recoveries: list = field(default_factory=list)  # {"dead": [names], "cause": why they were declared dead}


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
    ):
        """record_plan(stages, context_length, replaces_id) -> plan id: where plans are kept (the Plan table).
        model_ref: how shard servers find the model, a catalog name their model cache resolves
        (default: model_path, for nodes that share this file system).
        micro_batches: groups the in-flight sequences travel in (default: one per stage)."""
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
        self.previous_plan = None  # (live nodes it was made for, route)
        self.step_round_trip_s = None  # smoothed send-to-reply time of decode steps, over every run

    def step_deadline_s(self):
        measured = STEP_DEADLINE_FACTOR * self.step_round_trip_s if self.step_round_trip_s else 0.0
        return max(STEP_DEADLINE_FLOOR_S, measured)

    def record_step_round_trip(self, seconds):
        previous = self.step_round_trip_s
        self.step_round_trip_s = seconds if previous is None else previous + STEP_TIME_SMOOTHING * (seconds - previous)

    def generate(self, prompt_ids, max_tokens, params):
        return ClusterGeneration(self, [prompt_ids], max_tokens, params)

    def generate_batch(self, prompts, max_tokens, params):
        return ClusterGeneration(self, prompts, max_tokens, params)

    def live_heartbeats(self):
        return {info.name: info for info in read_heartbeats(self.client, self.cluster_token)}

    def plan(self, excluded):
        """Stages over the live nodes not in `excluded`: the previous plan while those are the same nodes
        (same start times), since free RAM wobbles from beat to beat and a new split reloads every stage."""
        candidates = [info for info in self.live_heartbeats().values() if info.name not in excluded]
        if not candidates:
            raise PlanError("no live node to run the model on (every node is down or was declared dead)")
        membership = frozenset((info.name, info.started_at) for info in candidates)
        if self.previous_plan and self.previous_plan[0] == membership:
            return self.previous_plan[1]
        nodes = [NodeCapacity(info.name, info.free_ram, info.gflops) for info in candidates]
        # Asked for N nodes and one died: spread over the survivors rather than fail the stream.
        n_nodes = min(self.n_nodes, len(nodes)) if self.n_nodes and excluded else self.n_nodes
        route = [stage.as_json() for stage in plan_stages(self.memory, nodes, n_nodes, self.weight_by_throughput)]
        self.previous_plan = (membership, route)
        return route

    def dead_nodes(self, names):
        """Those of `names` whose heartbeat expired or has not been renewed for HEARTBEAT_STALE_S."""
        heartbeats = self.live_heartbeats()
        now = time.time()
        return {name for name in names if name not in heartbeats or now - heartbeats[name].beat_at > HEARTBEAT_STALE_S}


@dataclass(eq=False)
class InFlight:
    """A message sent to the first stage whose replies have not all come back."""

    sent_at: float  # time.monotonic()
    steps: float  # forward calls' worth of work, for the deadline


class ClusterGeneration:
    """Iterate for TokenDelta as tokens come (one uninterrupted stream, whatever nodes die); then
    `results` holds each sequence's tokens and text, `stats` the timings, plans and per-stage stats."""

    def __init__(self, coordinator, prompts, max_tokens, params):
        for prompt in prompts:
            if not prompt:
                raise ValueError("a prompt needs at least one token")
            if len(prompt) >= coordinator.context_length:
                raise ValueError(
                    f"prompt of {len(prompt)} tokens leaves no room in a {coordinator.context_length}-token context"
                )
        self.coordinator = coordinator
        self.max_tokens = max_tokens
        self.params = params
        self.results = [SequenceResult(prompt_ids=list(prompt)) for prompt in prompts]
        self.stats = ClusterStats(prompt_tokens=sum(len(prompt) for prompt in prompts))
        self.run_id = uuid.uuid4().hex
        self.reply_to = protocol.reply_key(self.run_id)
        self.epoch = 0
        self.route = []
        self.plan_id = None
        self.pong_to = protocol.pong_key(self.run_id)
        self.excluded = set()
        self.n_groups = 1
        self.next_steps = {}
        self.in_flight = {}  # sequence -> InFlight, from sending its next rows until its token comes back
        self.last_progress = time.monotonic()
        self.rng_states = {}  # sequence -> its sampler's random generator after the last token (sampled runs)
        self.deadline_at = float("inf")
        self.pings_sent = 0

    # ------------------------------------------------------------------ the stream

    def __iter__(self):
        if self.max_tokens <= 0:
            return
        client = self.coordinator.client
        decoders = [IncrementalDecoder(self.coordinator.tokenizer) for _ in self.results]
        started = time.perf_counter()
        first_token_at = None
        try:
            self.start_plan()
            while self.unfinished():
                wait_s = min(self.coordinator.reply_timeout_s, self.deadline_at - time.monotonic())
                popped = client.blpop([self.reply_to], timeout=max(wait_s, MIN_BLPOP_TIMEOUT_S))
                if popped is None:
                    self.recover_if_stages_died()
                    continue
                header = self.decode(popped[1])
                if header is None or header["epoch"] != self.epoch or header["kind"] != "token":
                    continue  # forged, or a late reply from a plan that has since been replaced
                index = header["seq"]
                if not header["prefill"]:
                    self.coordinator.record_step_round_trip(time.monotonic() - self.in_flight[index].sent_at)
                    for trace, stage in zip(header["trace"], self.stats.stages):
                        stage.add(trace)
                del self.in_flight[index]
                self.last_progress = time.monotonic()
                self.renew_deadline()
                self.rng_states[index] = header["rng_state"]
                yield from self.accept(index, header["token"], decoders[index])
                if first_token_at is None and all(r.token_ids or r.finish_reason for r in self.results):
                    first_token_at = time.perf_counter()
        finally:
            self.release()
            client.delete(self.reply_to, self.pong_to)
        finished = time.perf_counter()
        self.stats.ttft_s = (first_token_at or finished) - started
        self.stats.prefill_tok_s = self.stats.prompt_tokens / self.stats.ttft_s if self.stats.ttft_s else 0.0
        self.stats.generated_tokens = sum(len(r.token_ids) for r in self.results)
        decoded = self.stats.generated_tokens - len(self.results)
        self.stats.decode_tok_s = decoded / (finished - first_token_at) if first_token_at and decoded > 0 else 0.0

    def accept(self, index, token, decoder):
        result = self.results[index]
        # Positions the cache holds once this token is fed back in: the prompt and every earlier token.
        context_full = len(result.prompt_ids) + len(result.token_ids) >= self.coordinator.context_length
        yield from accept_token(
            result, index, token, decoder, self.coordinator.tokenizer.stop_token_ids, self.max_tokens, context_full
        )
        if result.finish_reason is None:
            self.next_steps[index] = token
        else:
            self.release(seqs=[index])
        self.send_group_when_complete(index % self.n_groups)

    def send_group_when_complete(self, group):
        """Send a group's decode steps as one message once every unfinished member has its next token.

        Sequences move through the pipeline in n_groups micro-batches (one per stage): each stage
        then runs a whole group in one forward call while the other stages work on the other groups.
        """
        members = [index for index in self.unfinished() if index % self.n_groups == group]
        if members and all(index in self.next_steps for index in members):
            items = [{"seq": index, "chunks": [1]} for index in members]
            self.send(items, [self.next_steps.pop(index) for index in members])

    def unfinished(self):
        return [index for index, result in enumerate(self.results) if result.finish_reason is None]

    def node_names(self):
        return [stage["node"] for stage in self.route]

    # ------------------------------------------------------------------ plans and recovery

    def start_plan(self):
        """Plan over the live nodes not known dead, load the stages, (re)start every unfinished sequence."""
        while True:
            self.epoch += 1
            self.route = self.coordinator.plan(self.excluded)
            self.plan_id = self.coordinator.record_plan(self.route, self.coordinator.context_length, self.plan_id)
            self.stats.plans.append(self.route)
            self.stats.stages = [StageStats(stage["node"], stage["layers"]) for stage in self.route]
            if self.load_stages():
                break
        self.n_groups = max(1, min(self.coordinator.micro_batches or len(self.route), len(self.results)))
        self.next_steps = {}  # sequence -> its next input token, until its group is complete
        self.in_flight = {}
        self.last_progress = time.monotonic()
        for index in self.unfinished():
            result = self.results[index]
            tokens = result.prompt_ids + result.token_ids
            blocks = [
                len(result.prompt_ids[start : start + PREFILL_BLOCK_TOKENS])
                for start in range(0, len(result.prompt_ids), PREFILL_BLOCK_TOKENS)
            ]
            sampler = {
                "params": asdict(self.params),
                "prompt": result.prompt_ids,
                "generated": result.token_ids,
                "rng_state": self.rng_states.get(index),
            }
            item = {"seq": index, "chunks": blocks + [1] * len(result.token_ids), "reset": True, "sampler": sampler}
            self.send([item], tokens, steps=len(item["chunks"]) + len(result.prompt_ids) / PREFILL_ROWS_PER_STEP)

    def load_stages(self):
        """True once every stage has loaded its layers; False when a stage died meanwhile.

        Loading takes seconds to minutes (a model may first be copied from a peer), so only a stale
        heartbeat, not a deadline, tells a dead stage here."""
        client = self.coordinator.client
        for stage in self.route:
            self.send_control(stage["node"], self.header("load", layers=stage["layers"]))
        waiting = set(self.node_names())
        while waiting:
            popped = client.blpop([self.reply_to], timeout=self.coordinator.reply_timeout_s)
            if popped is None:
                if dead := self.coordinator.dead_nodes(waiting):
                    self.exclude(dead, f"heartbeat stale for {HEARTBEAT_STALE_S:.0f} s while loading layers")
                    return False
                continue
            header = self.decode(popped[1])
            if header is None or header["epoch"] != self.epoch:
                continue
            if header["kind"] == "failed":
                raise ClusterError(f"node {header['node']} could not load its layers: {header['error']}")
            waiting.discard(header.get("node"))
        return True

    def renew_deadline(self):
        """A reply is due from the messages in flight within one step deadline per forward call they need."""
        steps = sum({id(message): message.steps for message in self.in_flight.values()}.values())
        self.deadline_at = time.monotonic() + self.coordinator.step_deadline_s() * max(steps, 1)

    def recover_if_stages_died(self):
        """Re-plan and replay when a stage's heartbeat went stale or, past the deadline, it does not answer a ping."""
        names = self.node_names()
        if dead := self.coordinator.dead_nodes(names):
            self.exclude(dead, f"heartbeat stale for {HEARTBEAT_STALE_S:.0f} s")
        elif time.monotonic() >= self.deadline_at:
            allowance = max(self.deadline_at - self.last_progress, self.coordinator.step_deadline_s())
            if dead := self.unanswered_pings(names, allowance):
                self.exclude(dead, f"no reply by the {allowance:.1f} s deadline, nor an answer to a ping within {allowance:.1f} s")
            elif time.monotonic() - self.last_progress > SILENT_STAGE_LIMIT_S:
                raise ClusterError(f"stages {names} answer pings but returned nothing for {SILENT_STAGE_LIMIT_S:.0f} s")
            else:
                self.renew_deadline()  # every stage is working through its inbox: slow, not hung
                return
        else:
            return
        self.release()
        self.start_plan()

    def unanswered_pings(self, names, allowance_s):
        """Those of `names` that do not answer a ping within allowance_s. A stage answers once it has
        worked through what came before the ping, so a hung or stopped stage never does."""
        self.pings_sent += 1
        for name in names:
            self.send_control(name, self.header("ping", reply_to=self.pong_to, ping=self.pings_sent))
        answered, until = set(), time.monotonic() + allowance_s
        while answered < set(names) and (left_s := until - time.monotonic()) > 0:
            popped = self.coordinator.client.blpop([self.pong_to], timeout=max(left_s, MIN_BLPOP_TIMEOUT_S))
            if popped is None:
                break
            header = self.decode(popped[1])
            if header is not None and header["kind"] == "pong" and header.get("ping") == self.pings_sent:
                answered.add(header["node"])
        return set(names) - answered

    def exclude(self, dead, cause):
        self.excluded |= dead
        self.stats.dead_nodes += sorted(dead)
        self.stats.recoveries.append({"dead": sorted(dead), "cause": cause})

    # ------------------------------------------------------------------ messages

    def header(self, kind, **fields):
        return {
            "kind": kind,
            "run": self.run_id,
            "epoch": self.epoch,
            "model": self.coordinator.model_ref,
            "n_layers": self.coordinator.model.config.n_layers,
            "reply_to": self.reply_to,
            **fields,
        }

    def send(self, items, tokens, steps=1.0):
        """Token ids to the first stage: `items` say which sequence each run of them continues; `steps`:
        the forward calls' worth of work they are (one for decode steps), for the deadline."""
        header = self.header(
            "forward",
            route=self.route,
            hop=0,
            context_length=self.coordinator.context_length,
            items=items,
            sent_at=time.time(),
        )
        payload = np.asarray(tokens, dtype=protocol.TOKEN_DTYPE).tobytes()
        self.send_control(self.route[0]["node"], header, payload)
        message = InFlight(sent_at=time.monotonic(), steps=steps)
        self.in_flight.update((item["seq"], message) for item in items)
        self.renew_deadline()

    def send_control(self, node_name, header, payload=b""):
        message = protocol.encode(self.coordinator.cluster_token, header, payload)
        self.coordinator.client.rpush(protocol.inbox_key(node_name), message)

    def decode(self, message):
        """The header of a reply, or None (logged) when it is not signed with the cluster token."""
        try:
            return protocol.decode(self.coordinator.cluster_token, message)[0]
        except protocol.ForgedMessage as refusal:
            logger.warning("run %s: %s", self.run_id, refusal)
            return None

    def release(self, seqs=None):
        """Let the stages of the current plan drop their caches of these sequences (default: all)."""
        header = {"kind": "release", "run": self.run_id, "epoch": self.epoch, **({"seqs": seqs} if seqs else {})}
        for name in set(self.node_names()) - self.excluded:
            self.send_control(name, header)
