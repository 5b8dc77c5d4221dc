"""Generation through a pipeline of shard servers on the cluster's live nodes, surviving dead nodes.

The coordinator plans layer ranges over the nodes whose heartbeats it sees (planner), has each
shard server load its range, then drives every sequence: token ids go to the first stage, hidden
states travel stage to stage through Redis, and the last stage replies with the sampled token.

When a reply does not come within `reply_timeout_s`, the stages whose heartbeat has gone stale are
declared dead; the coordinator re-plans over the survivors and rebuilds every unfinished sequence by
replaying its prompt and the tokens generated so far (as Petals does). The replay repeats the
original computation exactly, prompt blocks first and then one decode step per generated token,
so the rebuilt KV caches are bit-identical and greedy output equals an undisturbed run.
"""
import time
import uuid
from dataclasses import asdict, dataclass, field

import numpy as np

from inference import pipeline_protocol as protocol
from inference.engine import DEFAULT_CONTEXT_LENGTH, PREFILL_BLOCK_TOKENS, GenerationStats, SequenceResult, accept_token
from inference.gguf_loader import embedding_and_head_bytes, layer_memory_bytes, read_gguf
from inference.heartbeat import read_heartbeats
from inference.planner import ModelMemory, NodeCapacity, plan_stages
from inference.tokenizer import IncrementalDecoder, Tokenizer

REPLY_TIMEOUT_S = 2.0
HEARTBEAT_STALE_S = 6.0
# A stage that is alive (heartbeat fresh) but silent this long is treated as hung.
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
    ):
        """record_plan(stages, context_length, replaces_id) -> plan id: where plans are kept (the Plan table).
        model_ref: how shard servers find the model, a catalog name their model cache resolves
        (default: model_path, for nodes that share this file system)."""
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

    def generate(self, prompt_ids, max_tokens, params):
        return ClusterGeneration(self, [prompt_ids], max_tokens, params)

    def generate_batch(self, prompts, max_tokens, params):
        return ClusterGeneration(self, prompts, max_tokens, params)

    def live_heartbeats(self):
        return {info.name: info for info in read_heartbeats(self.client, self.cluster_token)}

    def plan(self, excluded):
        nodes = [
            NodeCapacity(info.name, info.free_ram, info.gflops)
            for info in self.live_heartbeats().values()
            if info.name not in excluded
        ]
        if not nodes:
            raise PlanError("no live node to run the model on (every node is down or was declared dead)")
        # Asked for N nodes and one died: spread over the survivors rather than fail the stream.
        n_nodes = min(self.n_nodes, len(nodes)) if self.n_nodes and excluded else self.n_nodes
        return [stage.as_json() for stage in plan_stages(self.memory, nodes, n_nodes, self.weight_by_throughput)]

    def dead_nodes(self, names):
        """Those of `names` whose heartbeat expired or has not been renewed for HEARTBEAT_STALE_S."""
        heartbeats = self.live_heartbeats()
        now = time.time()
        return {name for name in names if name not in heartbeats or now - heartbeats[name].beat_at > HEARTBEAT_STALE_S}


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
        self.excluded = set()
        self.n_groups = 1
        self.next_steps = {}

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
            silent_since = time.monotonic()
            while self.unfinished():
                popped = client.blpop([self.reply_to], timeout=self.coordinator.reply_timeout_s)
                if popped is None:
                    if self.recover_from_dead_stages():
                        silent_since = time.monotonic()
                    elif time.monotonic() - silent_since > SILENT_STAGE_LIMIT_S:
                        raise ClusterError(f"no reply from stages {self.node_names()} for {SILENT_STAGE_LIMIT_S:.0f} s")
                    continue
                silent_since = time.monotonic()
                header, _ = protocol.decode(popped[1])
                if header["epoch"] != self.epoch or header["kind"] != "token":
                    continue  # a late reply from a plan that has since been replaced
                index = header["seq"]
                if not header["prefill"]:
                    for trace, stage in zip(header["trace"], self.stats.stages):
                        stage.add(trace)
                yield from self.accept(index, header["token"], decoders[index])
                if first_token_at is None and all(r.token_ids or r.finish_reason for r in self.results):
                    first_token_at = time.perf_counter()
        finally:
            self.release()
            client.delete(self.reply_to)
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
        self.n_groups = max(1, min(len(self.route), len(self.results)))
        self.next_steps = {}  # sequence -> its next input token, until its group is complete
        for index in self.unfinished():
            result = self.results[index]
            tokens = result.prompt_ids + result.token_ids
            blocks = [
                len(result.prompt_ids[start : start + PREFILL_BLOCK_TOKENS])
                for start in range(0, len(result.prompt_ids), PREFILL_BLOCK_TOKENS)
            ]
            sampler = {"params": asdict(self.params), "prompt": result.prompt_ids, "generated": result.token_ids}
            item = {"seq": index, "chunks": blocks + [1] * len(result.token_ids), "reset": True, "sampler": sampler}
            self.send([item], tokens)

    def load_stages(self):
        """True once every stage has loaded its layers; False when a stage died meanwhile."""
        client = self.coordinator.client
        for stage in self.route:
            header = self.header("load", layers=stage["layers"])
            client.rpush(protocol.inbox_key(stage["node"]), protocol.encode(header))
        waiting = set(self.node_names())
        while waiting:
            popped = client.blpop([self.reply_to], timeout=self.coordinator.reply_timeout_s)
            if popped is None:
                if self.exclude_dead(waiting):
                    return False
                continue
            header, _ = protocol.decode(popped[1])
            if header["epoch"] != self.epoch:
                continue
            if header["kind"] == "failed":
                raise ClusterError(f"node {header['node']} could not load its layers: {header['error']}")
            waiting.discard(header.get("node"))
        return True

    def recover_from_dead_stages(self):
        if not self.exclude_dead(self.node_names()):
            return False
        self.release()
        self.start_plan()
        return True

    def exclude_dead(self, names):
        dead = self.coordinator.dead_nodes(names)
        self.excluded |= dead
        self.stats.dead_nodes += sorted(dead)
        return bool(dead)

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

    def send(self, items, tokens):
        """Token ids to the first stage: `items` say which sequence each run of them continues."""
        header = self.header(
            "forward",
            route=self.route,
            hop=0,
            context_length=self.coordinator.context_length,
            items=items,
            sent_at=time.time(),
        )
        payload = np.asarray(tokens, dtype=protocol.TOKEN_DTYPE).tobytes()
        self.coordinator.client.rpush(protocol.inbox_key(self.route[0]["node"]), protocol.encode(header, payload))

    def release(self, seqs=None):
        """Let the stages of the current plan drop their caches of these sequences (default: all)."""
        header = {"kind": "release", "run": self.run_id, "epoch": self.epoch, **({"seqs": seqs} if seqs else {})}
        for name in set(self.node_names()) - self.excluded:
            self.coordinator.client.rpush(protocol.inbox_key(name), protocol.encode(header))
