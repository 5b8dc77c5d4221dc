"""Model cache settings from the environment (Django-free, like inference.plumbing.config)."""
import re
import socket
from dataclasses import dataclass

from inference.plumbing.config import ConfigError, parse_port

SIZE_PATTERN = re.compile(r"^(\d+)\s*([KMGT]?)B?$", re.IGNORECASE)
SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class CacheConfig:
    max_bytes: int  # 0: no limit
    peer_host: str  # the address peers use to reach this node's cache server
    peer_port: int  # 0: any free port (it is advertised in Redis, so peers need not know it in advance)


def load_cache_config(env):
    return CacheConfig(
        max_bytes=parse_size("MODEL_CACHE_MAX_SIZE", env.get("MODEL_CACHE_MAX_SIZE", "0")),
        peer_host=env.get("MODEL_CACHE_PEER_HOST") or lan_address(),
        peer_port=parse_port("MODEL_CACHE_PEER_PORT", env["MODEL_CACHE_PEER_PORT"]) if env.get("MODEL_CACHE_PEER_PORT") else 0,
    )


def parse_size(name, value):
    match = SIZE_PATTERN.match(value.strip())
    if not match:
        raise ConfigError(f"{name}: expected a size such as 0 (no limit), 500M or 40G, got {value!r}")
    return int(match.group(1)) * SIZE_UNITS[match.group(2).upper()]


def lan_address():
    """The address of the interface that routes to the LAN; connecting a UDP socket sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"
