"""A node's shard server: holds layer ranges of models and runs them for pipelines.

Data-plane messages (pipeline_protocol) come over its TCP listener (data_links), whose port its heartbeat
announces; control messages (load, release, ping), and data from a sender that could not connect, come through
its Redis inbox, looked at every REDIS_POLL_S. It keeps its stages' weights and a KV cache per sequence in
memory, and passes hidden states straight on to the next stage's listener; the last stage samples and sends the
coordinator the token id. Everything waiting when it looks is taken at once, and the single-token decode steps
of all those sequences go through one forward call (continuous batching). Redis being away stops only the
control plane: the data links carry on.
A prompt comes as one message per chunk (pipelined prefill): each chunk is passed on as soon as it is
read, so the next stage reads chunk 1 while this one reads chunk 2; the last stage answers a chunk
that does not end the prompt with a "progress" reply, which carries the stages' timings of it.
Messages not signed with the cluster token are dropped (pipeline_protocol). A ping is answered
after everything that came before it, so an answer proves this stage is working through its inbox.

A node's memory budget (`node --memory`) binds: before loading a stage the server adds up its weights as the
loader will hold them, a KV cache at the plan's context length and the working buffers of a forward at that
length (measured once per model and context, on one layer), and refuses a stage that does not fit with one line
to the coordinator. After loading, the weights are counted as StageWeights.n_bytes() says.

The arithmetic is inference.core.forward.forward, the very function the single-node engine runs.
"""
import ctypes
import ctypes.util
import logging
import time
import tracemalloc
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import psutil
import redis

from inference.cluster import data_links
from inference.cluster import pipeline_protocol as protocol
from inference.core.forward import forward
from inference.core.gguf_loader import load_stage, read_gguf, resident_bytes, stage_tensor_names, without_tokenizer_vocabulary
from inference.core.kv_cache import KVCache, Segment
from inference.core.sampling import Sampler, SamplingParams
from inference.core.scheduler import PREFILL_BLOCK_TOKENS
from inference.plumbing.outage import RedisOutage

logger = logging.getLogger(__name__)

POLL_TIMEOUT_S = 0.5
# How often the Redis inbox is looked at: the latency of a load, release or ping, and of data through Redis.
REDIS_POLL_S = 0.05
STATS_WRITE_INTERVAL_S = 1.0  # the rolling stats go to Redis at most this often, not once per token
MAX_MESSAGES_PER_BATCH = 256
LOADED_STAGES_KEPT = 2  # the current plan's stage, and the one before a re-plan while it drains
STATS_SMOOTHING = 0.1
MIB = 1024**2


class StageOverBudget(Exception):
    """A stage that would take this node past its memory budget; the message is the one line the coordinator shows.
    working_bytes: this node's measured working buffers at the plan's context length (0 when not measured yet), for
    a coordinator that planned with a lower figure to plan again."""

    def __init__(self, line, working_bytes=0):
        super().__init__(line)
        self.working_bytes = working_bytes


@dataclass(frozen=True)
class StageMemory:
    """Bytes a loaded stage holds: its weights, one sequence's KV cache at the context length, and the working
    buffers of a forward at that length (needed once per node, whatever the number of stages held)."""

    weights: int
    kv_cache: int
    working: int

    @property
    def held(self):
        return self.weights + self.kv_cache

    def describe(self, context_length):
        return (
            f"{self.weights / MIB:.0f} MiB weights + {self.kv_cache / MIB:.0f} MiB KV cache at {context_length} tokens"
            f" + {self.working / MIB:.0f} MiB working buffers"
        )


@dataclass
class Sequence:
    cache: KVCache
    sampler: Sampler | None  # on the last stage only
    used_at: float = 0.0  # time.time() of its last rows, to forget those whose coordinator a Redis outage failed


@dataclass(eq=False)
class Work:
    """One sequence's rows in a message this stage received."""

    header: dict
    item: dict
    rows: np.ndarray  # token ids [T] on the first stage, hidden states [T, D] after
    wait_ms: float  # from the sender's push to this stage's pop: queueing plus transfer
    sequence: Sequence
    received_at: float  # time.time() when its message was taken, for the time spent around the forward call
    message_bytes: int  # of the whole signed message its rows came in


@dataclass(eq=False)
class Result:
    work: Work
    output: np.ndarray  # hidden states [T, D], or logits [1, V] on the last stage
    started_at: float  # time.time() when its forward call began, for the coordinator's timeline
    compute_ms: float
    batch: int  # rows of the forward call that produced it


def resumed_sampler(spec, vocab_size):
    """A sampler that has seen the prompt and the tokens generated so far (a re-planned sequence), its
    random generator where it was after drawing the last of them."""
    sampler = Sampler(SamplingParams(**spec["params"]), vocab_size, spec["prompt"] + spec["generated"])
    np.add.at(sampler.generated_counts, np.asarray(spec["generated"], dtype=np.int64), 1)
    if spec.get("rng_state"):
        sampler.rng.bit_generator.state = spec["rng_state"]
    return sampler


def rng_state(sampler):
    """What resumed_sampler needs to continue the draws; None when sampling is greedy (no draws)."""
    return sampler.rng.bit_generator.state if sampler.params.temperature > 0 else None


class ShardServer:
    def __init__(
        self, client, cluster_token, node_name, locate_stage=lambda model, layers, with_embedding, with_head: model, memory_budget=None
    ):
        """locate_stage(model reference, layers, with_embedding, with_head) -> a local GGUF holding at
        least those tensors (the model cache's job; by default the reference is a path).
        memory_budget: bytes this node's stages may hold (weights, KV caches, working buffers); None: no limit."""
        self.client = client
        self.cluster_token = cluster_token
        self.node_name = node_name
        self.inbox = protocol.inbox_key(node_name)
        self.locate_stage = locate_stage
        self.memory_budget = memory_budget
        self.models = {}  # local GGUF path -> GGUFModel (header only)
        self.stages = OrderedDict()  # (model, first, stop) -> StageWeights
        self.stage_memory = {}  # (model, first, stop) -> StageMemory, measured once loaded
        self.working_bytes = {}  # (model reference, context length) -> measured peak extra of a forward
        # The process before it held any stage, its kernels compiled (set at the first stage's measurement):
        # its growth past this is what the budget bounds.
        self.baseline_rss = None
        self.sequences = {}  # (run, epoch, seq) -> Sequence
        self.rolling = {}
        self.listener = data_links.Listener()
        self.links = data_links.Links()
        self.outage = RedisOutage(logger, "shard server")
        self.inbox_cleared = True  # serve() clears it first; serve_once alone (tests) works through what is there
        self.next_redis_poll = 0.0  # time.monotonic()
        self.next_stats_write = 0.0

    # ------------------------------------------------------------------ the loop

    def serve(self, stop_event):
        """Serve until stop_event is set, riding out Redis outages."""
        self.inbox_cleared = False
        try:
            while not stop_event.is_set():
                self.serve_once(POLL_TIMEOUT_S)
        finally:
            self.listener.close()
            self.links.close()

    def serve_once(self, timeout_s):
        """What came over the data links within timeout_s (at most REDIS_POLL_S), then the Redis inbox when it is due
        (or nothing came): data first, since the next stage waits for it."""
        messages = self.listener.receive(min(timeout_s, REDIS_POLL_S))
        if messages:
            self.handle_riding_out_redis(messages)
        if messages and time.monotonic() < self.next_redis_poll:
            return
        self.next_redis_poll = time.monotonic() + REDIS_POLL_S
        try:
            if not self.inbox_cleared:
                # Whatever waited for a previous life of this node belongs to runs that have moved on.
                self.client.delete(self.inbox)
                self.inbox_cleared = True
            queued = self.client.lpop(self.inbox, MAX_MESSAGES_PER_BATCH) or []
            outage_since = self.outage.since
            if self.outage.succeeded():
                # The coordinators of the sequences left idle meanwhile failed them when their pings went unanswered.
                self.sequences = {key: held for key, held in self.sequences.items() if held.used_at >= outage_since}
        except redis.RedisError as error:
            self.next_redis_poll = time.monotonic() + self.outage.failed(error)
            return
        if queued:
            self.handle_riding_out_redis(queued)

    def handle_riding_out_redis(self, messages):
        """handle(); Redis gone while replying through it drops that reply (its coordinator's deadline sees to it)."""
        try:
            self.handle(messages)
        except redis.RedisError as error:
            self.next_redis_poll = time.monotonic() + self.outage.failed(error)

    def handle(self, messages):
        received_at = time.time()
        decoded = []
        for message in messages:
            try:
                decoded.append((*protocol.decode(self.cluster_token, message), len(message)))
            except protocol.ForgedMessage as refusal:
                logger.warning("%s (inbox %s)", refusal, self.inbox)
        forwards = {}
        for header, payload, size in decoded:
            if header["kind"] == "load":
                self.load(header)
            elif header["kind"] == "forward":
                # Sequences of every run that need the same layers share one batch.
                stage_key = (header["model"], *header["route"][header["hop"]]["layers"])
                forwards.setdefault(stage_key, []).append((header, payload, size))
        for group in forwards.values():
            try:
                self.run_group(group, received_at)
            except StageOverBudget as refusal:
                # Steps for a stage let go of to make room (a plan since replaced): their run re-plans when they time out.
                logger.warning("%s; dropping %d message(s) for it", refusal, len(group))
        for header, _, _ in decoded:
            if header["kind"] == "release":
                self.release(header)
            elif header["kind"] == "ping":
                pong = {"kind": "pong", "node": self.node_name, "ping": header["ping"], "run": header["run"], "epoch": header["epoch"]}
                self.send(header["reply_to"], pong)
        if forwards and self.rolling and time.monotonic() >= self.next_stats_write:  # none yet when every step was dropped
            self.next_stats_write = time.monotonic() + STATS_WRITE_INTERVAL_S
            self.client.hset(protocol.stats_key(self.node_name), mapping=self.rolling)

    # ------------------------------------------------------------------ control messages

    def stage_for(self, header, layers):
        key = (header["model"], *layers)
        if key not in self.stages:
            with_embedding, with_head = layers[0] == 0, layers[1] == header["n_layers"]
            path = self.locate_stage(header["model"], range(*layers), with_embedding, with_head)
            if path not in self.models:
                # Parsing a GGUF header takes seconds (a Python object per vocabulary entry): once per file. Stages
                # need no tokenizer, and its vocabulary would take a hundred MB or more of the budget.
                self.models[path] = without_tokenizer_vocabulary(read_gguf(path))
                release_freed_memory()
            model, layer_range = self.models[path], range(*layers)
            context_length = min(header["context_length"], model.config.context_length)
            expected = self.admit(header["model"], model, layer_range, with_embedding, with_head, context_length)
            stage = load_stage(model, layer_range, with_embedding, with_head)
            measured = StageMemory(stage.n_bytes(), expected.kv_cache, expected.working)
            if measured.weights > expected.weights + MIB:
                logger.warning(
                    "layers %s of %s hold %d bytes of weights, the loader counted %d", layers, header["model"], measured.weights, expected.weights
                )
            if self.memory_budget and self.held_bytes() + measured.held + measured.working > self.memory_budget:
                raise StageOverBudget(self.over_budget_line(layer_range, measured, context_length), measured.working)
            self.stages[key], self.stage_memory[key] = stage, measured
        self.stages.move_to_end(key)
        return self.stages[key]

    def admit(self, model_ref, model, layers, with_embedding, with_head, context_length):
        """What the stage will hold (StageMemory as the loader counts it), once it is known to fit: older stages are
        let go first (LOADED_STAGES_KEPT, then as the budget needs); a stage that does not fit alone is refused."""
        config = model.config
        weights = sum(resident_bytes(model.tensors[name]) for name in stage_tensor_names(model, layers, with_embedding, with_head))
        kv_cache = KVCache.bytes_per_position(len(layers), config.n_kv_heads, config.head_dim) * context_length
        if self.memory_budget and weights + kv_cache > self.memory_budget:  # refused before the measurement's load
            raise StageOverBudget(self.over_budget_line(layers, StageMemory(weights, kv_cache, 0), context_length))
        if (model_ref, context_length) not in self.working_bytes:
            self.working_bytes[(model_ref, context_length)] = measure_working_bytes(model, layers.start, context_length)
            if self.baseline_rss is None:
                self.baseline_rss = process_rss()
        expected = StageMemory(weights, kv_cache, self.working_bytes[(model_ref, context_length)])
        if self.memory_budget and expected.held + expected.working > self.memory_budget:
            raise StageOverBudget(self.over_budget_line(layers, expected, context_length), expected.working)
        while self.stages and (
            len(self.stages) >= LOADED_STAGES_KEPT
            or (self.memory_budget and self.held_bytes() + expected.held + expected.working > self.memory_budget)
        ):
            self.let_go(next(iter(self.stages)))
        return expected

    def let_go(self, key):
        del self.stages[key]
        del self.stage_memory[key]
        release_freed_memory()

    def held_bytes(self):
        """Weights and KV caches of the stages held now (their working buffers are counted once, by the caller)."""
        return sum(memory.held for memory in self.stage_memory.values())

    def over_budget_line(self, layers, memory, context_length):
        return (
            f"node {self.node_name} refuses layers {layers[0]}..{layers[-1]}: they need "
            f"{(memory.held + memory.working) / MIB:.0f} MiB ({memory.describe(context_length)}), "
            f"over its --memory budget of {self.memory_budget / MIB:.0f} MiB"
        )

    def memory_report(self):
        """For the heartbeat: the budget, what the stages held now measure, and whether the process grew past it."""
        rss = process_rss()
        growth = max(0, rss - self.baseline_rss) if self.baseline_rss is not None else 0
        held = list(self.stage_memory.items())  # a copy: the serving thread changes it while the heartbeat reads
        stage_bytes = sum(memory.held for _, memory in held) + max((memory.working for _, memory in held), default=0)
        return {
            "budget": self.memory_budget or 0,
            "stage_bytes": stage_bytes,
            "stages": [f"{model} {first}-{stop - 1}" for (model, first, stop), _ in held],
            "rss": rss,
            "rss_growth": growth,
            "over_budget": bool(self.memory_budget) and growth > self.memory_budget,
            # [model reference, context length, bytes]: what planners count for a stage's working buffers
            "working": [[model_ref, context_length, size] for (model_ref, context_length), size in list(self.working_bytes.items())],
            # Not memory, but what the heartbeat says of this shard server: where its data link listens.
            "data_port": self.listener.port,
        }

    def load(self, header):
        started = time.perf_counter()
        try:
            self.stage_for(header, header["layers"])
            reply = {"kind": "loaded", "node": self.node_name, "ms": (time.perf_counter() - started) * 1000}
        except StageOverBudget as refusal:
            logger.warning("%s", refusal)
            reply = {"kind": "failed", "node": self.node_name, "error": str(refusal), "working_bytes": refusal.working_bytes}
        except Exception as error:  # any failure must reach the coordinator instead of a silent timeout
            logger.exception("loading layers %s of %s failed", header["layers"], header["model"])
            reply = {"kind": "failed", "node": self.node_name, "error": f"{type(error).__name__}: {error}"}
        self.send(header["reply_to"], {**reply, "run": header["run"], "epoch": header["epoch"]})

    def send(self, key, header, payload=b""):
        self.client.rpush(key, protocol.encode(self.cluster_token, header, payload))

    def deliver(self, address, key, message):
        """Over the data link to `address` when there is one and it takes the message, else to the Redis list `key`."""
        if address is None or not self.links.send(address, message):
            self.client.rpush(key, message)

    def release(self, header):
        run, epoch, seqs = header["run"], header["epoch"], header.get("seqs")
        for key in [key for key in self.sequences if key[:2] == (run, epoch) and (seqs is None or key[2] in seqs)]:
            del self.sequences[key]

    # ------------------------------------------------------------------ forward passes

    def run_group(self, group, received_at):
        """Messages needing one stage: all decode steps in one forward call, then each prompt chunk (or replay) on
        its own, in the order they came."""
        first_header = group[0][0]
        stage = self.stage_for(first_header, first_header["route"][first_header["hop"]]["layers"])
        is_first, is_last = stage.embedding is not None, stage.head is not None
        work = []
        for header, payload, size in group:
            rows = protocol.payload_array(payload, is_first, stage.config.d_model)  # [T] or [T, D]
            wait_ms = max(0.0, (received_at - header["sent_at"]) * 1000)
            offset = 0
            for item in header["items"]:
                n_rows = sum(item["chunks"])
                share = rows[offset : offset + n_rows]
                offset += n_rows
                if not item.get("reset") and (header["run"], header["epoch"], item["seq"]) not in self.sequences:
                    # A step of a sequence this server no longer holds: sent before its link was cut or Redis went
                    # away, to a plan its coordinator has since left. Working it would serve a stale plan.
                    logger.info("dropped a stale step of run %s (epoch %s)", header["run"], header["epoch"])
                    continue
                work.append(Work(header, item, share, wait_ms, self.sequence(header, item, stage), received_at, size))
        steps = [entry for entry in work if not entry.item.get("prompt")]
        # Decode steps first and passed on at once, then each prompt chunk on its own as soon as it is done, so
        # the next stage starts on it while this one works through the rest.
        if steps:
            started_at, started = time.time(), time.perf_counter()
            inputs = np.concatenate([entry.rows for entry in steps])  # [B] or [B, D]
            outputs = forward(inputs, stage, [Segment(entry.sequence.cache, 1) for entry in steps])  # [B, D] or [B, V]
            compute_ms = (time.perf_counter() - started) * 1000
            results = [Result(entry, outputs[index : index + 1], started_at, compute_ms, len(steps)) for index, entry in enumerate(steps)]
            self.hand_on(results, is_last)
        for entry in work:
            if entry in steps:
                continue
            started_at, started, outputs, offset = time.time(), time.perf_counter(), [], 0
            for n_tokens in entry.item["chunks"]:
                chunk = entry.rows[offset : offset + n_tokens]
                outputs.append(forward(chunk, stage, [Segment(entry.sequence.cache, n_tokens)]))
                offset += n_tokens
            # The last stage returns logits per chunk: only the final chunk's predict the next token.
            output = outputs[-1] if is_last else np.concatenate(outputs)
            compute_ms = (time.perf_counter() - started) * 1000
            self.hand_on([Result(entry, output, started_at, compute_ms, len(entry.rows))], is_last)

    def hand_on(self, results, is_last):
        if is_last:
            self.reply_tokens(results)
        else:
            self.pass_on(results)

    def sequence(self, header, item, stage):
        key = (header["run"], header["epoch"], item["seq"])
        if item.get("reset") or key not in self.sequences:
            config = stage.config
            cache = KVCache(len(stage.layer_range), config.n_kv_heads, config.head_dim, header["context_length"])
            sampler = resumed_sampler(item["sampler"], config.vocab_size) if stage.head is not None else None
            self.sequences[key] = Sequence(cache, sampler)
        self.sequences[key].used_at = time.time()
        return self.sequences[key]

    def pass_on(self, results):
        """One message on to the next stage per message received, so each run keeps its own route."""
        by_message = {}
        for result in results:
            by_message.setdefault(id(result.work.header), []).append(result)
        for message_results in by_message.values():
            header = message_results[0].work.header
            payload = b"".join(result.output.astype(protocol.HIDDEN_DTYPE, copy=False).tobytes() for result in message_results)
            items = [
                {**result.work.item, "trace": result.work.item.get("trace", []) + [self.trace(result, result.output.nbytes)]}
                for result in message_results
            ]
            next_hop = header["hop"] + 1
            next_inbox = protocol.inbox_key(header["route"][next_hop]["node"])
            message = protocol.encode(self.cluster_token, {**header, "hop": next_hop, "items": items, "sent_at": time.time()}, payload)
            self.deliver(header["links"][next_hop] if header.get("links") else None, next_inbox, message)

    def reply_tokens(self, results):
        """The sampled token after each item that ends a sequence's known tokens; a "progress" reply (no sampling)
        after a prompt chunk that does not."""
        for result in results:
            header, item = result.work.header, result.work.item
            reply = {"run": header["run"], "epoch": header["epoch"], "seq": item["seq"], "part": item.get("part", 0)}
            if item.get("samples", True):
                sampler = result.work.sequence.sampler
                token = sampler.next_token(result.output[-1])
                reply.update(
                    kind="token",
                    token=token,
                    prefill=bool(item.get("prompt")),  # a prompt (or replay) rather than one decode step
                    rng_state=rng_state(sampler),  # so that a re-planned sequence draws what this one would have
                )
            else:
                reply["kind"] = "progress"
            reply["trace"] = item.get("trace", []) + [self.trace(result, protocol.TOKEN_DTYPE().nbytes)]
            reply["sent_at"] = time.time()
            self.deliver(header.get("reply_link"), header["reply_to"], protocol.encode(self.cluster_token, reply))

    def trace(self, result, bytes_out):
        entry = {
            "node": self.node_name,
            "started_at": result.started_at,
            "compute_ms": result.compute_ms,
            "wait_ms": result.work.wait_ms,
            "bytes_in": result.work.rows.nbytes,
            "bytes_out": bytes_out,
            "batch": result.batch,
            # Decoding, bookkeeping, sampling and encoding the rows on: this stage's Python around its forward call.
            "around_ms": max(0.0, (time.time() - result.work.received_at) * 1000 - result.compute_ms),
            "message_bytes": result.work.message_bytes,
        }
        self.record_rolling_stats(entry)
        return entry

    def record_rolling_stats(self, entry):
        """Smoothed in memory; serve_once writes them to Redis once per round of messages."""
        for name in ("compute_ms", "wait_ms", "bytes_in", "bytes_out", "batch"):
            previous = self.rolling.get(name)
            value = float(entry[name])
            self.rolling[name] = value if previous is None else previous + STATS_SMOOTHING * (value - previous)
        self.rolling["steps"] = self.rolling.get("steps", 0) + 1


def measure_working_bytes(model, layer, context_length):
    """Peak bytes a stage allocates beyond the weights and KV cache it holds, for a prompt filling the context:
    the rows it receives and the rows it passes on (both [T, D]), and the forward of the last prompt block, the one
    whose attention reads the most positions. Measured on one layer: a stage runs its layers one after another,
    each one's temporaries freed before the next."""
    config = model.config
    block = min(PREFILL_BLOCK_TOKENS, context_length)
    probe = load_stage(model, range(layer, layer + 1), False, False)
    generator = np.random.default_rng(0)
    warm_up = generator.standard_normal((1, config.d_model), dtype=np.float32)  # [1, D]
    # The first call compiles the kernels; compiled code is no working buffer.
    forward(warm_up, probe, [Segment(KVCache(1, config.n_kv_heads, config.head_dim, 1), 1)])
    cache = KVCache(1, config.n_kv_heads, config.head_dim, context_length)
    cache.keys.fill(0.0)  # resident now, so that the peak below counts only what the work allocates
    cache.values.fill(0.0)
    cache.length = context_length - block
    release_freed_memory()
    with PeakMemory() as peak:
        received = generator.standard_normal((context_length, config.d_model), dtype=np.float32)  # [T, D]
        passed_on = received.copy()  # [T, D], the hidden states a stage concatenates for the next one
        forward(received[-block:], probe, [Segment(cache, block)])
    del probe, received, passed_on, cache
    release_freed_memory()
    return peak.extra_bytes


class PeakMemory:
    """The peak bytes allocated within the block beyond what the process held when it began: the peak resident set
    (VmHWM, reset through /proc/self/clear_refs) where Linux offers it, else tracemalloc's peak of Python and
    numpy allocations."""

    def __enter__(self):
        self.before = process_rss()
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # peak resident set := current
            self.traced = False
        except OSError:
            tracemalloc.start()
            self.traced = True
        return self

    def __exit__(self, *exc_info):
        if self.traced:
            self.extra_bytes = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        else:
            self.extra_bytes = max(0, peak_rss() - self.before)


def process_rss():
    return psutil.Process().memory_info().rss


def peak_rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("/proc/self/status has no VmHWM")


_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


def release_freed_memory():
    """Hand freed heap pages back to the OS (glibc keeps them otherwise), so resident bytes measure what is held."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def rolling_stage_stats(client, node_name):
    """The exponentially smoothed per-step stats a shard server keeps in Redis (empty before any work)."""
    return {key.decode(): float(value) for key, value in client.hgetall(protocol.stats_key(node_name)).items()}
