"""Messages of the pipeline's data plane, carried by Redis lists (the broker the cluster already runs).

A message is a 4-byte big-endian header length, a JSON header, then a payload: token ids (int64)
for the first stage, hidden states (float32 rows of width d_model) between stages. Every stage has
one inbox list; a coordinator has one reply list per run.
"""
import json
import struct

import numpy as np

HEADER_LENGTH = struct.Struct(">I")
HIDDEN_DTYPE = np.float32
TOKEN_DTYPE = np.int64


def inbox_key(node_name):
    return f"kotatsu:shard:{node_name}:inbox"


def stats_key(node_name):
    return f"kotatsu:shard:{node_name}:stats"


def reply_key(run_id):
    return f"kotatsu:run:{run_id}:replies"


def encode(header, payload=b""):
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    return HEADER_LENGTH.pack(len(header_bytes)) + header_bytes + payload


def decode(message):
    (length,) = HEADER_LENGTH.unpack_from(message)
    start = HEADER_LENGTH.size
    return json.loads(message[start : start + length]), memoryview(message)[start + length :]


def payload_array(payload, is_first_stage, d_model):
    if is_first_stage:
        return np.frombuffer(payload, dtype=TOKEN_DTYPE)  # [T]
    return np.frombuffer(payload, dtype=HIDDEN_DTYPE).reshape(-1, d_model)  # [T, D]
