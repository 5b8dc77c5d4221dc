"""The cluster's stepper for the scheduler's token loop: rows go through the pipeline of shard servers.

Token ids go to the first stage, hidden states travel stage to stage over direct TCP links (data_links; through
Redis to a stage that cannot be reached so), and the last stage sends this run's listener the sampled token: its
sampler is rebuilt on every (re)start of a sequence from the params, the tokens so far and the random generator's
state carried in the last reply. A prompt is sent all at once, not over several steps (each would be a round trip
through every stage), as one message per PREFILL_BLOCK_TOKENS chunk (pipelined prefill): stage 2 reads chunk 1
while stage 1 reads chunk 2, so the time to the first token of a long prompt is about one stage's reading of it
plus a chunk per further stage, not the sum of the stages' (a replay's generated tokens ride with the last chunk,
one forward call each). The stages' start and end times of each chunk come back with it
(ClusterStats.prefill_timeline). Decode steps travel in micro-batches (one per stage by default): a group's steps
are sent as one message once every member that is not reading its prompt has its next token, so each stage runs a
whole group in one forward call while the others work on the other groups.

Every message in flight has a deadline: a decode step gets the coordinator's step deadline, a prefill
or replay that much per forward call it needs. When the deadline passes without a reply, the stepper
pings the stages through their inboxes; a stage that does not answer in time is declared dead, and so is
one whose heartbeat has gone stale. The stepper then has the coordinator re-plan over the survivors and
tells the scheduler that every cache is lost (CachesLost): the scheduler replays each unfinished sequence,
prompt blocks first and then one decode step per generated token (as Petals does), which repeats the
original computation exactly, so greedy output equals an undisturbed run, and a sampled sequence draws
what it would have drawn.
"""
import logging
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np
import redis

from inference.cluster import data_links
from inference.cluster import pipeline_protocol as protocol
from inference.cluster.planner import PlanError
from inference.core.scheduler import CachesLost, GenerationStats

logger = logging.getLogger(__name__)

HEARTBEAT_STALE_S = 6.0
# A prefill or replay gets one step's deadline per chunk it runs and one more per this many prompt rows.
PREFILL_ROWS_PER_STEP = 16
MIN_BLPOP_TIMEOUT_S = 0.01  # Redis reads a timeout of 0 as "block forever"
# While no reply comes over the data link, the Redis reply list (stages that could not connect) is looked at this often.
REPLY_POLL_S = 0.05
REPLIES_PER_POLL = 256
# Stages that answer pings but return nothing for this long: the run fails instead of waiting forever.
SILENT_STAGE_LIMIT_S = 300.0


class ClusterError(Exception):
    """The cluster cannot run or finish the generation; the message says why."""


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
    around_ms: float = 0.0
    message_bytes: int = 0

    def add(self, trace):
        self.tokens += 1
        self.compute_ms += trace["compute_ms"]
        self.wait_ms += trace["wait_ms"]
        self.around_ms += trace.get("around_ms", 0.0)  # absent from nodes of an earlier version
        self.message_bytes += trace.get("message_bytes", 0)
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
            "around_ms": round(self.around_ms / n, 3),  # the stage's Python around its forward call
            "message_bytes": self.message_bytes // n,  # the signed message its rows came in
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
    # Each prompt chunk at each stage: {"seq", "part", "rows", "node", "started_s", "finished_s"}, seconds since the
    # prompt was sent (stage clocks against the coordinator's: exact when they share a machine).
    prefill_timeline: list = field(default_factory=list)
    # Decode steps only: from the last stage's send of a token to this process taking it, and from taking it to
    # sending the next step to the first stage (the scheduler's and this stepper's per-token work); and the replies' size.
    decode_replies: int = 0
    reply_wait_ms: float = 0.0
    coordinator_ms: float = 0.0
    reply_bytes: int = 0

    def per_token_coordinator(self):
        n = max(self.decode_replies, 1)
        return {"reply_wait_ms": self.reply_wait_ms / n, "coordinator_ms": self.coordinator_ms / n, "reply_bytes": self.reply_bytes // n}


@dataclass(eq=False)
class InFlight:
    """A message sent to the first stage whose replies have not all come back."""

    sent_at: float  # time.monotonic()
    steps: float  # forward calls' worth of work, for the deadline
    wall_sent_at: float = 0.0  # time.time(), what the stages' timeline entries are compared with
    prompt: bool = False  # a prompt (or replay) rather than decode steps


class PipelineStepper:
    # Every prompt whole: reading it over several steps would cost a round trip through every stage each.
    prefill_tokens_per_step = None

    def __init__(self, coordinator, stats):
        self.coordinator = coordinator
        self.stats = stats  # ClusterStats: plans, dead nodes and per-stage stats land there
        self.run_id = uuid.uuid4().hex
        self.reply_to = protocol.reply_key(self.run_id)
        self.pong_to = protocol.pong_key(self.run_id)
        self.epoch = 0
        self.route = []
        self.plan_id = None
        self.excluded = set()
        self.n_groups = 1
        self.sequences = {}  # the scheduler's Sequence by id, from start to finish
        self.next_steps = {}  # sequence id -> its next input token, until its group is complete
        self.in_flight = {}  # sequence id -> InFlight, from sending its rows until its token comes back
        self.rng_states = {}  # sequence id -> its sampler's random generator after the last token (sampled runs)
        self.last_progress = time.monotonic()
        self.deadline_at = float("inf")
        self.pings_sent = 0
        self.listener = data_links.Listener()  # the last stage's replies; its port is this run's own
        self.links = data_links.Links()
        self.stage_links = []  # (host, port) of each stage's data link, None where its heartbeat names none
        self.reply_link = None  # (host, port) of this run's listener, as the stages reach it
        self.replies = deque()  # messages received and not yet looked at
        self.token_taken_at = None  # time.perf_counter() when the last decode step's token was taken

    # ------------------------------------------------------------------ the scheduler's stepper

    def start(self, sequence):
        self.sequences[sequence.id] = sequence
        return 0

    def run(self, rows):
        """The next token; a Redis gone mid-answer ends the generation with a ClusterError saying so, never a hang."""
        try:
            return self.run_on_redis(rows)
        except redis.RedisError as error:
            raise ClusterError(
                f"the cluster lost Redis, which carries its plans and control messages ({error}); ask again once it is back"
            ) from None

    def run_on_redis(self, rows):
        if not self.route:
            self.start_plan()
        for row in rows:
            if row.restart:
                self.send_restart(row)
            else:
                self.next_steps[row.sequence.id] = row.tokens[0]  # a decode step: prompts are read whole
        self.send_complete_groups()
        return [self.next_token()]

    def finish(self, sequence_id):
        del self.sequences[sequence_id]
        self.rng_states.pop(sequence_id, None)
        self.next_steps.pop(sequence_id, None)
        try:
            self.release(seqs=[sequence_id])
        except redis.RedisError as error:  # the next step says so to the sequences still generating
            logger.warning("run %s: could not release sequence %s (%s)", self.run_id, sequence_id, error)

    def close(self):
        self.listener.close()
        self.links.close()
        try:
            self.release()
            self.coordinator.client.delete(self.reply_to, self.pong_to)
        except redis.RedisError as error:  # the stages' caches and these keys went with Redis, or expire with the run
            logger.warning("run %s: could not release its stages (%s)", self.run_id, error)

    def node_names(self):
        return [stage["node"] for stage in self.route]

    # ------------------------------------------------------------------ rows out, tokens back

    def send_restart(self, row):
        """A sequence's whole known tokens, on stages that start its cache and sampler afresh: one message per prompt
        chunk when pipelined, the replay's generated tokens with the last one; everything in one message if not."""
        sequence = row.sequence
        result = sequence.result
        sampler = {
            "params": asdict(sequence.params),
            "prompt": result.prompt_ids,
            "generated": result.token_ids,
            "rng_state": self.rng_states.get(sequence.id),
        }
        n_prompt_chunks = len(row.chunks) - (len(row.tokens) - len(result.prompt_ids))
        if self.coordinator.pipelined_prefill:
            parts = [row.chunks[index : index + 1] for index in range(n_prompt_chunks - 1)] + [row.chunks[n_prompt_chunks - 1 :]]
        else:
            parts = [row.chunks]
        sent_at, wall_sent_at, offset = time.monotonic(), time.time(), 0
        for index, chunks in enumerate(parts):
            item = {"seq": sequence.id, "chunks": chunks, "prompt": True, "part": index, "samples": index == len(parts) - 1}
            if index == 0:
                item.update(reset=True, sampler=sampler)
            self.push([item], row.tokens[offset : offset + sum(chunks)])
            offset += sum(chunks)
        steps = len(row.chunks) + len(result.prompt_ids) / PREFILL_ROWS_PER_STEP
        self.track([sequence.id], InFlight(sent_at, steps, wall_sent_at, prompt=True))

    def send_complete_groups(self):
        """Send each group's decode steps as one message once every member that is not reading its prompt has its
        next token (a prompt joining a group does not hold the others' steps back while it is read)."""
        reading = {index for index, message in self.in_flight.items() if message.prompt}
        for group in range(self.n_groups):
            members = [index for index in self.sequences if index % self.n_groups == group and index not in reading]
            if members and all(index in self.next_steps for index in members):
                if self.token_taken_at is not None:
                    self.stats.coordinator_ms += (time.perf_counter() - self.token_taken_at) * 1000
                    self.token_taken_at = None
                items = [{"seq": index, "chunks": [1]} for index in members]
                self.push(items, [self.next_steps.pop(index) for index in members])
                self.track(members, InFlight(time.monotonic(), 1.0))

    def next_token(self):
        """(sequence id, token) of the next reply; CachesLost once stages died and the run was re-planned."""
        while True:
            if not self.replies:
                wait_s = min(self.coordinator.reply_timeout_s, self.deadline_at - time.monotonic())
                self.replies.extend(self.wait_for_replies(max(wait_s, MIN_BLPOP_TIMEOUT_S)))
            if not self.replies:
                self.recover_if_stages_died()
                continue
            reply = self.replies.popleft()
            taken_at, wall_taken_at = time.perf_counter(), time.time()
            header = self.decode(reply)
            if header is None or header["epoch"] != self.epoch or header["kind"] not in ("token", "progress"):
                continue  # forged, or a late reply from a plan that has since been replaced
            index = header["seq"]
            message = self.in_flight.pop(index) if header["kind"] == "token" else self.in_flight.get(index)
            self.last_progress = time.monotonic()
            self.renew_deadline()
            if index not in self.sequences or message is None:
                continue  # removed while its step was in flight
            if message.prompt:
                self.record_timeline(header, message)
            if header["kind"] == "progress":
                continue
            if not header["prefill"]:
                self.coordinator.record_step_round_trip(time.monotonic() - message.sent_at)
                self.stats.decode_replies += 1
                self.stats.reply_wait_ms += max(0.0, wall_taken_at - header.get("sent_at", wall_taken_at)) * 1000
                self.stats.reply_bytes += len(reply)
                self.token_taken_at = taken_at
                for trace, stage in zip(header["trace"], self.stats.stages):
                    stage.add(trace)
            self.rng_states[index] = header["rng_state"]
            return index, header["token"]

    def wait_for_replies(self, wait_s):
        """Replies that came within wait_s: over this run's listener, or through Redis from a stage that could not
        connect to it. Redis being away does not stop replies that come over the link."""
        until = time.monotonic() + wait_s
        while True:
            if messages := self.listener.receive(min(REPLY_POLL_S, until - time.monotonic())):
                return messages
            try:
                if queued := self.coordinator.client.lpop(self.reply_to, REPLIES_PER_POLL):
                    return queued
            except redis.RedisError as error:
                logger.debug("run %s: no Redis to look for replies in (%s)", self.run_id, error)
            if time.monotonic() >= until:
                return []

    def record_timeline(self, header, message):
        for trace in header["trace"]:
            self.stats.prefill_timeline.append(
                {
                    "seq": header["seq"],
                    "part": header["part"],
                    "rows": trace["batch"],
                    "node": trace["node"],
                    "started_s": trace["started_at"] - message.wall_sent_at,
                    "finished_s": trace["started_at"] + trace["compute_ms"] / 1000 - message.wall_sent_at,
                }
            )

    # ------------------------------------------------------------------ plans and recovery

    def start_plan(self):
        """Plan over the live nodes not known dead and load the stages, until every stage has loaded."""
        while True:
            self.epoch += 1
            self.route = self.coordinator.plan(self.excluded)
            self.plan_id = self.coordinator.record_plan(self.route, self.coordinator.context_length, self.plan_id)
            self.stats.plans.append(self.route)
            self.stats.stages = [StageStats(stage["node"], stage["layers"]) for stage in self.route]
            if self.load_stages():
                break
        self.n_groups = self.coordinator.micro_batches or len(self.route)
        self.stage_links = self.coordinator.data_links(self.route)
        first_host = next((link[0] for link in self.stage_links if link), None)
        self.reply_link = (data_links.link_host_towards(first_host), self.listener.port) if first_host else None
        self.replies = deque()
        self.next_steps = {}
        self.in_flight = {}
        self.last_progress = time.monotonic()

    def load_stages(self):
        """True once every stage has loaded its layers; False when a stage died meanwhile.

        Loading takes seconds to minutes (a model may first be copied from a peer), so only a stale
        heartbeat, not a deadline, tells a dead stage here."""
        for stage in self.route:
            self.send_control(stage["node"], self.header("load", layers=stage["layers"], context_length=self.coordinator.context_length))
        waiting = set(self.node_names())
        while waiting:
            popped = self.coordinator.client.blpop([self.reply_to], timeout=self.coordinator.reply_timeout_s)
            if popped is None:
                if dead := self.dead_nodes(waiting):
                    self.exclude(dead, f"heartbeat stale for {HEARTBEAT_STALE_S:.0f} s while loading layers")
                    return False
                continue
            header = self.decode(popped[1])
            if header is None or header["epoch"] != self.epoch:
                continue
            if header["kind"] == "failed":
                if self.coordinator.learn_working_bytes(header.get("working_bytes", 0)):
                    # The node measured larger working buffers than this plan counted: plan again with its figure.
                    logger.info("run %s: re-planning: %s", self.run_id, header["error"])
                    return False
                raise ClusterError(f"node {header['node']} could not load its layers: {header['error']}")
            waiting.discard(header.get("node"))
        return True

    def renew_deadline(self):
        """A reply is due from the messages in flight within one step deadline per forward call they need."""
        steps = sum({id(message): message.steps for message in self.in_flight.values()}.values())
        self.deadline_at = time.monotonic() + self.coordinator.step_deadline_s() * max(steps, 1)

    def recover_if_stages_died(self):
        """Re-plan when a stage's heartbeat went stale or, past the deadline, it does not answer a ping;
        then CachesLost, for the scheduler to replay every sequence."""
        names = self.node_names()
        if dead := self.dead_nodes(names):
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
        try:
            self.start_plan()
        except PlanError as shortfall:
            raise PlanError(f"{', '.join(sorted(dead))} stopped mid-answer and the nodes left cannot take over: {shortfall}") from None
        raise CachesLost()

    def dead_nodes(self, names):
        """Those of `names` whose heartbeat expired or has not been renewed for HEARTBEAT_STALE_S."""
        heartbeats = self.coordinator.live_heartbeats()
        now = time.time()
        return {name for name in names if name not in heartbeats or now - heartbeats[name].beat_at > HEARTBEAT_STALE_S}

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
        self.coordinator.mark_down(dead)
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

    def push(self, items, tokens):
        """Token ids to the first stage: `items` say which sequence each run of them continues."""
        header = self.header(
            "forward",
            route=self.route,
            hop=0,
            context_length=self.coordinator.context_length,
            items=items,
            sent_at=time.time(),
            links=self.stage_links,
            reply_link=self.reply_link,
        )
        payload = np.asarray(tokens, dtype=protocol.TOKEN_DTYPE).tobytes()
        message = protocol.encode(self.coordinator.cluster_token, header, payload)
        if not (self.stage_links[0] and self.links.send(self.stage_links[0], message)):
            self.coordinator.client.rpush(protocol.inbox_key(self.route[0]["node"]), message)

    def track(self, sequence_ids, message):
        """Their tokens are due back: `message.steps` forward calls' worth of work, for the deadline."""
        self.in_flight.update((index, message) for index in sequence_ids)
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
