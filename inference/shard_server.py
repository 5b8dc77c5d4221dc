"""A node's shard server: holds layer ranges of models and runs them for pipelines, over Redis.

It pops messages from its inbox (pipeline_protocol), keeps its stages' weights and a KV cache per
sequence in memory, and passes hidden states on to the next stage; the last stage samples and
replies with token ids. Everything waiting in the inbox when it looks is taken at once, and the
single-token decode steps of all those sequences go through one forward call (continuous batching).

The arithmetic is inference.forward.forward, the very function the single-node engine runs.
"""
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from inference import pipeline_protocol as protocol
from inference.forward import forward
from inference.gguf_loader import load_stage, read_gguf
from inference.kv_cache import KVCache, Segment
from inference.sampling import Sampler, SamplingParams

logger = logging.getLogger(__name__)

POLL_TIMEOUT_S = 0.5
MAX_MESSAGES_PER_BATCH = 256
LOADED_STAGES_KEPT = 2  # the current plan's stage, and the one before a re-plan while it drains
STATS_SMOOTHING = 0.1


@dataclass
class Sequence:
    cache: KVCache
    sampler: Sampler | None  # on the last stage only


def resumed_sampler(spec, vocab_size):
    """A sampler that has seen the prompt and the tokens generated so far (a re-planned sequence)."""
    sampler = Sampler(SamplingParams(**spec["params"]), vocab_size, spec["prompt"] + spec["generated"])
    np.add.at(sampler.generated_counts, np.asarray(spec["generated"], dtype=np.int64), 1)
    return sampler


class ShardServer:
    def __init__(self, client, node_name, locate_model=str):
        """locate_model: model reference from a load message -> local GGUF path (the model cache's job)."""
        self.client = client
        self.node_name = node_name
        self.inbox = protocol.inbox_key(node_name)
        self.locate_model = locate_model
        self.models = {}  # model reference -> GGUFModel (header only)
        self.stages = OrderedDict()  # (model, first, stop) -> StageWeights
        self.sequences = {}  # (run, epoch, seq) -> Sequence
        self.rolling = {}

    # ------------------------------------------------------------------ the loop

    def serve(self, stop_event):
        # Whatever waited for a previous life of this node belongs to runs that have moved on.
        self.client.delete(self.inbox)
        while not stop_event.is_set():
            self.serve_once(POLL_TIMEOUT_S)

    def serve_once(self, timeout_s):
        popped = self.client.blpop([self.inbox], timeout=timeout_s)
        if popped is None:
            return
        messages = [popped[1]] + (self.client.lpop(self.inbox, MAX_MESSAGES_PER_BATCH - 1) or [])
        received_at = time.time()
        decoded = [protocol.decode(message) for message in messages]
        forwards = {}
        for header, payload in decoded:
            if header["kind"] == "load":
                self.load(header)
            elif header["kind"] == "forward":
                group = (header["run"], header["epoch"], header["hop"])
                forwards.setdefault(group, []).append((header, payload))
        for group in forwards.values():
            self.run_group(group, received_at)
        for header, _ in decoded:
            if header["kind"] == "release":
                self.release(header)

    # ------------------------------------------------------------------ control messages

    def stage_for(self, header, layers):
        key = (header["model"], *layers)
        if key not in self.stages:
            if header["model"] not in self.models:
                # Parsing a GGUF header takes seconds (a Python object per vocabulary entry): once per model.
                self.models[header["model"]] = read_gguf(self.locate_model(header["model"]))
            model = self.models[header["model"]]
            self.stages[key] = load_stage(
                model, range(*layers), with_embedding=layers[0] == 0, with_head=layers[1] == model.config.n_layers
            )
            while len(self.stages) > LOADED_STAGES_KEPT:
                self.stages.popitem(last=False)
        self.stages.move_to_end(key)
        return self.stages[key]

    def load(self, header):
        started = time.perf_counter()
        try:
            self.stage_for(header, header["layers"])
            reply = {"kind": "loaded", "node": self.node_name, "ms": (time.perf_counter() - started) * 1000}
        except Exception as error:  # any failure must reach the coordinator instead of a silent timeout
            logger.exception("loading layers %s of %s failed", header["layers"], header["model"])
            reply = {"kind": "failed", "node": self.node_name, "error": f"{type(error).__name__}: {error}"}
        self.client.rpush(header["reply_to"], protocol.encode({**reply, "run": header["run"], "epoch": header["epoch"]}))

    def release(self, header):
        run, epoch, seqs = header["run"], header["epoch"], header.get("seqs")
        for key in [key for key in self.sequences if key[:2] == (run, epoch) and (seqs is None or key[2] in seqs)]:
            del self.sequences[key]

    # ------------------------------------------------------------------ forward passes

    def run_group(self, group, received_at):
        """Messages for one hop of one run: decode steps batched into one forward, the rest alone."""
        first_header = group[0][0]
        route, hop = first_header["route"], first_header["hop"]
        stage = self.stage_for(first_header, route[hop]["layers"])
        config = stage.config
        is_first, is_last = stage.embedding is not None, stage.head is not None
        work = []  # (item, rows [T] or [T, D], wait_ms, bytes_in)
        for header, payload in group:
            rows = protocol.payload_array(payload, is_first, config.d_model)
            wait_ms = max(0.0, (received_at - header["sent_at"]) * 1000)
            offset = 0
            for item in header["items"]:
                n_rows = sum(item["chunks"])
                share = rows[offset : offset + n_rows]
                work.append((item, share, wait_ms, share.nbytes))
                offset += n_rows
        singles, others = [], []
        for entry in work:
            is_decode_step = entry[0]["chunks"] == [1] and not entry[0].get("reset")
            (singles if is_decode_step else others).append(entry)
        results = []  # (item, output rows or logits, compute_ms, wait_ms, bytes_in, batch rows)
        if singles:
            started = time.perf_counter()
            inputs = np.concatenate([rows for _, rows, _, _ in singles])  # [B] or [B, D]
            segments = [Segment(self.sequence(first_header, item, stage).cache, 1) for item, *_ in singles]
            outputs = forward(inputs, stage, segments)  # [B, D] or [B, V]
            compute_ms = (time.perf_counter() - started) * 1000
            for index, (item, _, wait_ms, bytes_in) in enumerate(singles):
                results.append((item, outputs[index : index + 1], compute_ms, wait_ms, bytes_in, len(singles)))
        for item, rows, wait_ms, bytes_in in others:
            started = time.perf_counter()
            sequence = self.sequence(first_header, item, stage)
            outputs, offset = [], 0
            for n_tokens in item["chunks"]:
                outputs.append(forward(rows[offset : offset + n_tokens], stage, [Segment(sequence.cache, n_tokens)]))
                offset += n_tokens
            # The last stage returns logits per chunk: only the final chunk's predict the next token.
            output = outputs[-1] if is_last else np.concatenate(outputs)
            results.append((item, output, (time.perf_counter() - started) * 1000, wait_ms, bytes_in, len(rows)))
        if is_last:
            self.reply_tokens(first_header, results)
        else:
            self.pass_on(first_header, results)

    def sequence(self, header, item, stage):
        key = (header["run"], header["epoch"], item["seq"])
        if item.get("reset") or key not in self.sequences:
            config = stage.config
            cache = KVCache(len(stage.layer_range), config.n_kv_heads, config.head_dim, header["context_length"])
            sampler = resumed_sampler(item["sampler"], config.vocab_size) if stage.head is not None else None
            self.sequences[key] = Sequence(cache, sampler)
        return self.sequences[key]

    def pass_on(self, header, results):
        payload = b"".join(np.ascontiguousarray(output, dtype=protocol.HIDDEN_DTYPE).tobytes() for _, output, *_ in results)
        items = []
        for item, output, compute_ms, wait_ms, bytes_in, batch in results:
            bytes_out = output.nbytes
            items.append({**item, "trace": item.get("trace", []) + [self.trace(compute_ms, wait_ms, bytes_in, bytes_out, batch)]})
        next_hop = header["hop"] + 1
        message = protocol.encode({**header, "hop": next_hop, "items": items, "sent_at": time.time()}, payload)
        self.client.rpush(protocol.inbox_key(header["route"][next_hop]["node"]), message)

    def reply_tokens(self, header, results):
        replies = []
        for item, logits, compute_ms, wait_ms, bytes_in, batch in results:
            sequence = self.sequences[(header["run"], header["epoch"], item["seq"])]
            token = sequence.sampler.next_token(logits[-1])
            trace = item.get("trace", []) + [self.trace(compute_ms, wait_ms, bytes_in, 8, batch)]
            replies.append(
                protocol.encode(
                    {"kind": "token", "run": header["run"], "epoch": header["epoch"], "seq": item["seq"], "token": token, "trace": trace}
                )
            )
        self.client.rpush(header["reply_to"], *replies)

    def trace(self, compute_ms, wait_ms, bytes_in, bytes_out, batch):
        entry = {"node": self.node_name, "compute_ms": compute_ms, "wait_ms": wait_ms, "bytes_in": bytes_in, "bytes_out": bytes_out, "batch": batch}
        self.record_rolling_stats(entry)
        return entry

    def record_rolling_stats(self, entry):
        for name in ("compute_ms", "wait_ms", "bytes_in", "bytes_out", "batch"):
            previous = self.rolling.get(name)
            value = float(entry[name])
            self.rolling[name] = value if previous is None else previous + STATS_SMOOTHING * (value - previous)
        self.rolling["steps"] = self.rolling.get("steps", 0) + 1
        self.client.hset(protocol.stats_key(self.node_name), mapping=self.rolling)


def rolling_stage_stats(client, node_name):
    """The exponentially smoothed per-step stats a shard server keeps in Redis (empty before any work)."""
    return {key.decode(): float(value) for key, value in client.hgetall(protocol.stats_key(node_name)).items()}
