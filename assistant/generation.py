"""Where text is generated: the one function that picks the cluster or this node, and a uniform stream.

On this node, concurrent requests share one scheduler (inference's token loop): a request that arrives while
others generate joins them at the next step, whose forward call covers a token of every sequence plus a block
of the newcomers' prompts, so 16 clients cost little more per step than one. On the cluster each request is
a generation of its own, and the shard servers batch concurrent sequences themselves.
"""
import collections
import functools
import queue
import threading
from dataclasses import dataclass

from django.conf import settings

from inference.cluster.heartbeat import read_heartbeats
from inference.models import ModelMark
from inference.plumbing.redis import redis_client
from inference.selectors import CLUSTER_MIN_NODES, serving_model
from inference.core.sampling import SamplingParams

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

    def stream_chat(self, messages, max_tokens, params, shared_system_prompt=None):
        """shared_system_prompt: the text the first (system) message begins with in every request of its kind;
        this node's engine reads it once and reuses its keys and values."""
        prompt_ids = self.engine.tokenizer.encode_chat(messages)
        shared_prefix_tokens = 0
        if shared_system_prompt is not None:
            head_ids = self.engine.tokenizer.encode_chat([{"role": "system", "content": shared_system_prompt}])
            shared_prefix_tokens = common_prefix_length(prompt_ids, head_ids)
        return ChatStream(self, prompt_ids, max_tokens, params, shared_prefix_tokens)

    def generate(self, prompt_ids, max_tokens, params, shared_prefix_tokens):
        if isinstance(self.engine, BatchingEngine):
            return self.engine.generate(prompt_ids, max_tokens, params, shared_prefix_tokens)
        return self.engine.generate(prompt_ids, max_tokens, params)  # the cluster's stages keep no shared prefixes


def common_prefix_length(first, second):
    length = 0
    for a, b in zip(first, second):
        if a != b:
            break
        length += 1
    return length


class ChatStream:
    """Iterate for text deltas; afterwards prompt_tokens, completion_tokens and finish_reason are set."""

    def __init__(self, model, prompt_ids, max_tokens, params, shared_prefix_tokens=0):
        room = model.context_length - len(prompt_ids)
        if room < 1:
            raise PromptTooLong(len(prompt_ids), model.context_length)
        self.model = model
        self.prompt_ids = prompt_ids
        self.max_tokens = min(max_tokens, room)
        self.params = params
        self.shared_prefix_tokens = shared_prefix_tokens
        self.prompt_tokens = len(prompt_ids)
        self.completion_tokens = 0
        self.finish_reason = None

    def __iter__(self):
        generation = self.model.generate(self.prompt_ids, self.max_tokens, self.params, self.shared_prefix_tokens)
        for delta in generation:
            if delta.text:
                yield delta.text
        result = generation.results[0]
        self.completion_tokens = len(result.token_ids)
        self.finish_reason = result.finish_reason


class BatchedSequence:
    """One request's share of the running batch, iterated like inference's Generation of a single prompt."""

    def __init__(self, batcher, prompt_ids, max_tokens, params, shared_prefix_tokens):
        self.batcher, self.prompt_ids, self.max_tokens, self.params = batcher, prompt_ids, max_tokens, params
        self.shared_prefix_tokens = shared_prefix_tokens
        self.results = []  # inference's SequenceResult, once the sequence has finished
        self.deltas = queue.Queue()
        self.abandoned = False  # the reader stopped early (a client that went away): generation stops too

    def __iter__(self):
        self.batcher.pending.put(self)
        finished = False
        try:
            while (item := self.deltas.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
            finished = True
        finally:
            self.abandoned = not finished

    def finish(self, result=None, error=None):
        if result is not None:
            self.results.append(result)
        if error is not None:
            self.deltas.put(error)
        self.deltas.put(None)


class BatchingEngine:
    """This node's engine behind one thread that runs every request in one continuous batch.

    A request joins the batch at the next step, whatever the others are doing, and its first token is
    streamed in the step that reads the end of its prompt; at most MAX_BATCH run at once, later ones wait.
    """

    def __init__(self, engine):
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.context_length = engine.context_length
        self.pending = queue.Queue()
        threading.Thread(target=self.serve, daemon=True, name="generation-batch").start()

    def generate(self, prompt_ids, max_tokens, params, shared_prefix_tokens=0):
        return BatchedSequence(self, prompt_ids, max_tokens, params, shared_prefix_tokens)

    def serve(self):
        """Feed the requests to one scheduler of the engine (inference's token loop) and route its deltas."""
        scheduler = self.engine.scheduler()
        running = {}  # BatchedSequence by its id in the scheduler
        waiting = collections.deque()
        while True:
            if not running and not waiting:
                waiting.append(self.pending.get())
            while not self.pending.empty():
                waiting.append(self.pending.get_nowait())
            for sequence_id, request in list(running.items()):
                if request.abandoned:
                    scheduler.remove(sequence_id)
                    del running[sequence_id]
            while waiting and len(running) < MAX_BATCH:
                request = waiting.popleft()
                if request.abandoned:
                    continue
                try:
                    sequence_id = scheduler.add(request.prompt_ids, request.max_tokens, request.params,
                                                request.shared_prefix_tokens)
                    running[sequence_id] = request
                except ValueError as error:  # a prompt the window cannot hold
                    request.finish(error=error)
            try:
                step = scheduler.step()
            except Exception as error:
                for request in running.values():
                    request.finish(error=error)
                scheduler.close()
                scheduler, running = self.engine.scheduler(), {}
                continue
            for delta in step.deltas:
                running[delta.sequence].deltas.put(delta)
            for sequence_id, result in step.finished.items():
                running.pop(sequence_id).finish(result)


def local_model(model_name):
    # Requests that come while the web server's warm-up loads the model wait for it instead of loading their own.
    with model_loading:
        return loaded_local_model(model_name)


model_loading = threading.Lock()


@functools.cache
def loaded_local_model(model_name):
    from inference.core.engine import Engine
    from inference.services import do_fetch_model

    return ChatModel(BatchingEngine(Engine(do_fetch_model(model_name))))


@functools.cache
def cluster_model(model_name):
    from inference.services import cluster_coordinator, do_fetch_model

    return ChatModel(cluster_coordinator(do_fetch_model(model_name), model_name))


@functools.cache
def cluster_client():
    return redis_client()


def chat_model(model_name=None, use=ModelMark.CHAT):
    """The LLM named, else the one that serves `use` now (inference.selectors.serving_model): on the cluster when
    other nodes are up to share the layers, on this node's engine otherwise."""
    model_name = model_name or serving_model(use)
    live_nodes = read_heartbeats(cluster_client(), settings.CLUSTER_TOKEN)
    return cluster_model(model_name) if len(live_nodes) >= CLUSTER_MIN_NODES else local_model(model_name)


def answering_model(model_name=None):
    """The LLM of grounded answers: the one named, else the one marked for them ("kotatsu")."""
    return chat_model(model_name, use=ModelMark.ANSWERS)


def sampling_params(temperature=0.0, top_p=1.0, seed=None):
    return SamplingParams(temperature=temperature, top_p=top_p, seed=seed)
