"""Where text is generated: the one function that picks the cluster or this node, and a uniform stream.

On this node, concurrent requests are batched: requests that arrive while a batch runs join the next one,
whose decode steps cover every sequence in one forward call, so 16 waiting clients cost little more per
step than one. The cluster's shard servers batch concurrent sequences themselves.
"""
import functools
import queue
import threading
from dataclasses import dataclass

from django.conf import settings

from inference.heartbeat import read_heartbeats
from inference.redis_client import cluster_redis
from inference.sampling import SamplingParams

DEFAULT_MAX_TOKENS = 256
MAX_BATCH = 16


class PromptTooLong(ValueError):
    """The prompt leaves no room to generate in the model's context window."""

    def __init__(self, prompt_tokens, context_length):
        super().__init__(
            f"the prompt has {prompt_tokens} tokens but the model's context window is {context_length} tokens"
        )
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length


@dataclass
class ChatModel:
    # A BatchingEngine (this node) or inference's Coordinator (the cluster): the same generate() and tokenizer.
    engine: object

    @property
    def context_length(self):
        return self.engine.context_length

    def count_chat_tokens(self, messages):
        return len(self.engine.tokenizer.encode_chat(messages))

    def count_tokens(self, text):
        return len(self.engine.tokenizer.encode(text))

    def stream_chat(self, messages, max_tokens, params):
        return ChatStream(self, self.engine.tokenizer.encode_chat(messages), max_tokens, params)


class ChatStream:
    """Iterate for text deltas; afterwards prompt_tokens, completion_tokens and finish_reason are set."""

    def __init__(self, model, prompt_ids, max_tokens, params):
        room = model.context_length - len(prompt_ids)
        if room < 1:
            raise PromptTooLong(len(prompt_ids), model.context_length)
        self.model = model
        self.prompt_ids = prompt_ids
        self.max_tokens = min(max_tokens, room)
        self.params = params
        self.prompt_tokens = len(prompt_ids)
        self.completion_tokens = 0
        self.finish_reason = None

    def __iter__(self):
        generation = self.model.engine.generate(self.prompt_ids, self.max_tokens, self.params)
        for delta in generation:
            if delta.text:
                yield delta.text
        result = generation.results[0]
        self.completion_tokens = len(result.token_ids)
        self.finish_reason = result.finish_reason


@dataclass
class SequenceOutcome:
    token_ids: list
    finish_reason: str | None = None


class BatchedSequence:
    """One request's share of a batch, iterated like inference's Generation of a single prompt."""

    def __init__(self, batcher, prompt_ids, max_tokens, params):
        self.batcher, self.prompt_ids, self.max_tokens, self.params = batcher, prompt_ids, max_tokens, params
        self.results = [SequenceOutcome(token_ids=[])]
        self.deltas = queue.Queue()
        self.finished = False

    def __iter__(self):
        self.batcher.pending.put(self)
        while (item := self.deltas.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    def accept(self, delta):
        """Pass a delta of the batch on to this request, until it has all the tokens it asked for."""
        if self.finished:
            return
        if delta.token_id is not None:
            self.results[0].token_ids.append(delta.token_id)
        self.deltas.put(delta)
        if len(self.results[0].token_ids) >= self.max_tokens:
            self.finish("length")

    def finish(self, reason, error=None):
        if not self.finished:
            self.finished = True
            self.results[0].finish_reason = reason
            if error is not None:
                self.deltas.put(error)
            self.deltas.put(None)


class BatchingEngine:
    """This node's engine behind one thread that runs waiting requests of equal sampling parameters together."""

    def __init__(self, engine):
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.context_length = engine.context_length
        self.pending = queue.Queue()
        threading.Thread(target=self.serve, daemon=True, name="generation-batches").start()

    def generate(self, prompt_ids, max_tokens, params):
        return BatchedSequence(self, prompt_ids, max_tokens, params)

    def serve(self):
        waiting = []
        while True:
            if not waiting:
                waiting.append(self.pending.get())
            while not self.pending.empty():
                waiting.append(self.pending.get_nowait())
            params = waiting[0].params
            batch = [request for request in waiting if request.params == params][:MAX_BATCH]
            waiting = [request for request in waiting if request not in batch]
            self.run(batch)

    def run(self, batch):
        try:
            generation = self.engine.generate_batch(
                [request.prompt_ids for request in batch], max(request.max_tokens for request in batch), batch[0].params
            )
            for delta in generation:
                batch[delta.sequence].accept(delta)
                # A sequence the engine has ended (a stop token) is answered now, not when the batch ends.
                for request, result in zip(batch, generation.results):
                    if result.finish_reason is not None:
                        request.finish(result.finish_reason)
                if all(request.finished for request in batch):
                    break
            for request, result in zip(batch, generation.results):
                request.finish(result.finish_reason or "length")
        except Exception as error:
            for request in batch:
                request.finish("error", error)


@functools.cache
def local_model(model_name):
    from inference.engine import Engine
    from inference.services import do_fetch_model

    return ChatModel(BatchingEngine(Engine(do_fetch_model(model_name))))


@functools.cache
def cluster_model(model_name):
    from inference.services import cluster_coordinator, do_fetch_model

    return ChatModel(cluster_coordinator(do_fetch_model(model_name), model_name))


@functools.cache
def cluster_client():
    return cluster_redis(settings.REDIS_URL)


def chat_model(model_name):
    """The cluster when other nodes are up to share the layers, this node's engine otherwise."""
    live_nodes = read_heartbeats(cluster_client(), settings.CLUSTER_TOKEN)
    return cluster_model(model_name) if len(live_nodes) >= 2 else local_model(model_name)


def sampling_params(temperature=0.0, top_p=1.0, seed=None):
    return SamplingParams(temperature=temperature, top_p=top_p, seed=seed)
