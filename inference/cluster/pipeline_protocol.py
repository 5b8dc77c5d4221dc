"""Messages of the pipeline, carried over direct TCP links between the processes (data_links: hidden states and
tokens) and by Redis lists (control messages, and data for a process that cannot be reached directly).

A message is a 32-byte HMAC-SHA256 under the cluster token of everything after it, a 4-byte
big-endian header length, a JSON header, then a payload: token ids (int64) for the first stage,
hidden states (float32 rows of width d_model) between stages. Whoever can write to Redis or connect to a
data link but does not hold the token cannot make a stage compute or a coordinator accept a token: unsigned messages
are refused like the heartbeats of another cluster, on either channel. Every stage has one inbox list; a
coordinator has one reply list per run, and one for the answers to its pings.
"""
import hashlib
import hmac
import json
import struct

import numpy as np

SIGNATURE_BYTES = hashlib.sha256().digest_size
HEADER_LENGTH = struct.Struct(">I")
HIDDEN_DTYPE = np.float32
TOKEN_DTYPE = np.int64


class ForgedMessage(ValueError):
    """A message whose signature does not match the cluster token (or that is too short to carry one)."""


def inbox_key(node_name):
    return f"kotatsu:shard:{node_name}:inbox"


def stats_key(node_name):
    return f"kotatsu:shard:{node_name}:stats"


def reply_key(run_id):
    return f"kotatsu:run:{run_id}:replies"


def pong_key(run_id):
    return f"kotatsu:run:{run_id}:pongs"


def signature(token, body):
    return hmac.digest(token.encode(), body, hashlib.sha256)


def encode(token, header, payload=b""):
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    body = HEADER_LENGTH.pack(len(header_bytes)) + header_bytes + payload
    return signature(token, body) + body


def decode(token, message):
    """(header, payload as a memoryview); ForgedMessage when the signature is not the token's."""
    body = memoryview(message)[SIGNATURE_BYTES:]
    if len(body) < HEADER_LENGTH.size or not hmac.compare_digest(signature(token, body), message[:SIGNATURE_BYTES]):
        raise ForgedMessage(f"refused a {len(message)}-byte message not signed with the cluster token")
    (length,) = HEADER_LENGTH.unpack_from(body)
    start = HEADER_LENGTH.size
    return json.loads(bytes(body[start : start + length])), body[start + length :]


def payload_array(payload, is_first_stage, d_model):
    if is_first_stage:
        return np.frombuffer(payload, dtype=TOKEN_DTYPE)  # [T]
    return np.frombuffer(payload, dtype=HIDDEN_DTYPE).reshape(-1, d_model)  # [T, D]
