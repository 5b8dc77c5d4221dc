"""Direct TCP links of the pipeline's data plane: each signed message (pipeline_protocol) framed by its 4-byte
big-endian length, over one persistent connection per sender and receiver.

Through Redis every hop was two commands and three process wake-ups (sender -> Redis -> receiver), measured at
250-400 µs one way on this 2-vCPU machine; a frame on a kept-open socket is one send and one wake-up of the
receiver, ~10 µs. The frames carry the very messages Redis carried, HMAC and all, so a peer that can connect but
does not hold the cluster token is refused as before. A message that cannot be sent (peer gone, link cut,
nothing listening) is reported to the caller, which falls back to the Redis inbox: the deadlines and replay of
the stepper do the rest, as they did for a message lost with its node.
"""
import select
import selectors
import socket
import struct
import time
from collections import OrderedDict

FRAME_LENGTH = struct.Struct(">I")
CONNECT_TIMEOUT_S = 1.0
# A receiver that stops reading (a stopped process) blocks a big prompt chunk's send: give up instead of hanging.
SEND_TIMEOUT_S = 2.0
# After a failed connect or send, the address is not tried again for this long (its messages go through Redis),
# so that one sequence's messages do not alternate between two channels and overtake one another.
UNREACHABLE_FOR_S = 30.0
MAX_CONNECTIONS = 32  # outgoing ones kept open; every run of a coordinator listens on a port of its own
MAX_FRAME_BYTES = 1 << 30  # a whole prompt's hidden states; past this a peer is sending garbage
RECEIVE_BYTES = 1 << 20


def link_host_towards(host):
    """This machine's address on the route to `host`: the one a peer there reaches us at (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


class Listener:
    """A listening socket and the connections peers open to it; receive() returns the whole frames that came."""

    def __init__(self, port=0):
        self.socket = socket.create_server(("0.0.0.0", port))
        self.socket.setblocking(False)
        self.port = self.socket.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.socket, selectors.EVENT_READ)
        self.buffers = {}  # connection -> bytearray of what came after its last whole frame

    def receive(self, timeout_s):
        """The messages whose frames are complete, waiting up to timeout_s for the first bytes; [] if none came."""
        messages = []
        for key, _ in self.selector.select(max(timeout_s, 0.0)):
            if key.fileobj is self.socket:
                if connection := self.accept():
                    self.read(connection, messages)  # a peer's first frame usually came with its connection
            else:
                self.read(key.fileobj, messages)
        return messages

    def accept(self):
        try:
            connection, _ = self.socket.accept()
        except BlockingIOError:
            return None
        connection.setblocking(False)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.register(connection, selectors.EVENT_READ)
        self.buffers[connection] = bytearray()
        return connection

    def read(self, connection, messages):
        buffer = self.buffers[connection]
        try:
            data = connection.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(connection)
            return
        buffer += data
        start = 0
        while len(buffer) - start >= FRAME_LENGTH.size:
            (length,) = FRAME_LENGTH.unpack_from(buffer, start)
            if length > MAX_FRAME_BYTES:
                self.drop(connection)
                return
            end = start + FRAME_LENGTH.size + length
            if len(buffer) < end:
                break
            messages.append(bytes(buffer[start + FRAME_LENGTH.size : end]))
            start = end
        del buffer[:start]

    def drop(self, connection):
        self.selector.unregister(connection)
        del self.buffers[connection]
        connection.close()

    def close(self):
        for connection in list(self.buffers):
            self.drop(connection)
        self.selector.close()
        self.socket.close()


class Links:
    """Outgoing connections by (host, port), opened on first use and kept."""

    def __init__(self):
        self.connections = OrderedDict()
        self.unreachable = {}  # address -> time.monotonic() until which it is not tried

    def send(self, address, message):
        """True once the message's frame is handed to the kernel; False (the caller uses Redis) when it cannot be."""
        address = tuple(address)
        if self.unreachable.get(address, 0.0) > time.monotonic():
            return False
        try:
            connection = self.connection(address)
            connection.sendall(FRAME_LENGTH.pack(len(message)) + message)
            return True
        except OSError:
            self.forget(address)
            self.unreachable[address] = time.monotonic() + UNREACHABLE_FOR_S
            return False

    def connection(self, address):
        connection = self.connections.get(address)
        if connection is not None and peer_closed(connection):
            self.forget(address)  # a restarted peer: its old connection would swallow the frame
            connection = None
        if connection is None:
            connection = socket.create_connection(address, timeout=CONNECT_TIMEOUT_S)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.settimeout(SEND_TIMEOUT_S)
            self.connections[address] = connection
            while len(self.connections) > MAX_CONNECTIONS:
                self.connections.popitem(last=False)[1].close()
        self.connections.move_to_end(address)
        return connection

    def forget(self, address):
        connection = self.connections.pop(address, None)
        if connection is not None:
            connection.close()

    def close(self):
        for address in list(self.connections):
            self.forget(address)


def peer_closed(connection):
    """Receivers never write on these connections: anything readable is the peer's close or reset."""
    readable, _, _ = select.select([connection], [], [], 0)
    return bool(readable)
