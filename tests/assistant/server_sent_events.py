"""The events of a streamed (text/event-stream) response, as the tests read them."""
import json

from asgiref.sync import async_to_sync


async def read_all(stream):
    return [part async for part in stream]


def server_sent_events(response):
    """[(event name or None, data)] of a streamed response read to its end."""
    assert response["Content-Type"] == "text/event-stream"
    return parsed_events(b"".join(async_to_sync(read_all)(response.streaming_content)))


def parsed_events(body):
    """[(event name or None, data)] of an event-stream body: data as JSON, or "[DONE]" as it is."""
    events = []
    for block in body.decode().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        data = fields["data"]
        events.append((fields.get("event"), data if data == "[DONE]" else json.loads(data)))
    return events
