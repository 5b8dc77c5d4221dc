"""Where text is generated: the one function that picks the cluster or this node, and a uniform stream.

This node's engine runs numpy on every core already, so it runs one generation at a time per process at
full speed, and concurrent requests queue on a lock instead of slowing each other down. The cluster's shard
servers batch concurrent sequences themselves, so its generations start at once.
"""
import contextlib
import functools
import threading
from dataclasses import dataclass

from django.conf import settings

from inference.heartbeat import read_heartbeats
from inference.redis_client import cluster_redis
from inference.sampling import SamplingParams

DEFAULT_MAX_TOKENS = 256


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
    # inference's Engine (this node) or Coordinator (the cluster): the same generate() and tokenizer.
    engine: object
    # Held for the whole of one generation.
    lock: object

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
    """Iterate for text deltas; afterwards prompt_tokens, completion_tokens, ttft_s and finish_reason are set."""

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
        self.ttft_s = None
        self.finish_reason = None

    def __iter__(self):
        with self.model.lock:
            generation = self.model.engine.generate(self.prompt_ids, self.max_tokens, self.params)
            for delta in generation:
                if self.ttft_s is None:
                    self.ttft_s = generation.stats.ttft_s
                if delta.text:
                    yield delta.text
            result = generation.results[0]
            self.completion_tokens = len(result.token_ids)
            self.finish_reason = result.finish_reason


@functools.cache
def local_model(model_name):
    from inference.engine import Engine
    from inference.services import do_fetch_model

    return ChatModel(Engine(do_fetch_model(model_name)), threading.Lock())


@functools.cache
def cluster_model(model_name):
    from inference.services import cluster_coordinator, do_fetch_model

    return ChatModel(cluster_coordinator(do_fetch_model(model_name), model_name), contextlib.nullcontext())


@functools.cache
def cluster_client():
    return cluster_redis(settings.REDIS_URL)


def chat_model(model_name):
    """The cluster when other nodes are up to share the layers, this node's engine otherwise."""
    live_nodes = read_heartbeats(cluster_client(), settings.CLUSTER_TOKEN)
    return cluster_model(model_name) if len(live_nodes) >= 2 else local_model(model_name)


def sampling_params(temperature=0.0, top_p=1.0, seed=None):
    return SamplingParams(temperature=temperature, top_p=top_p, seed=seed)
