"""Serving a blocking generation as server-sent events from async views (ASGI).

The generation runs in its own thread so that the event loop keeps serving other requests; a client that
disconnects stops it at the next token. The thread speaks the request's language (Django activates it per
request, and a new thread starts with none): a grounded answer decides its language with it, and the HTML
rendered for the answer is in it. Django's StreamingHttpResponse needs an async iterator under ASGI:
a sync one would be read to the end before the first byte is sent.
"""
import asyncio
import json
import threading

import redis
from django.db import connections
from django.utils import translation

from inference.cluster.pipeline_stepper import ClusterError

_DONE = object()


async def iterate_in_thread(produce):
    """Run produce(emit) in a new thread; yield every value it emits, and re-raise what it raises."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()
    stop = threading.Event()
    language = translation.get_language()

    def emit(value):
        if stop.is_set():
            raise GeneratorExit("the client went away")
        loop.call_soon_threadsafe(queue.put_nowait, (value, None))

    def run():
        error = None
        try:
            with translation.override(language):
                produce(emit)
        except GeneratorExit:
            pass
        except Exception as raised:
            error = raised
        finally:
            # Connections are per thread; this one's would otherwise stay open until the database drops it.
            connections.close_all()
            loop.call_soon_threadsafe(queue.put_nowait, (_DONE, error))

    threading.Thread(target=run, daemon=True, name="generation").start()
    try:
        while True:
            value, error = await queue.get()
            if value is _DONE:
                if error is not None:
                    raise error
                return
            yield value
    finally:
        stop.set()


def cluster_unavailable(error):
    """What to tell the asker when `error` means the cluster cannot answer for now (its Redis is away, its nodes
    cannot run the model), or None for any other failure."""
    if isinstance(error, redis.RedisError):
        return f"The cluster cannot answer now: its Redis is unreachable ({error}). Ask again once it is back."
    if isinstance(error, ClusterError):
        return f"The cluster cannot answer now: {error}"
    return None


def sse_event(data, event=None):
    """One server-sent event carrying JSON (or a literal string such as "[DONE]")."""
    payload = data if isinstance(data, str) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n"
