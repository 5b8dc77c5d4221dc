"""What a node runs besides its Celery worker, free of Django: calibration, heartbeats, shard server."""
import logging
import os
import threading
import time

import numpy as np
import psutil
import redis

from inference.cluster.heartbeat import HEARTBEAT_INTERVAL_S, ClusterTokenError, NodeInfo, join_cluster, publish_heartbeat
from inference.plumbing.outage import RedisOutage

logger = logging.getLogger(__name__)

# A decode-sized matmul: a few rows against a layer-sized weight, what a pipeline stage mostly does.
CALIBRATION_SHAPE = (8, 1024, 1024)
CALIBRATION_SECONDS = 0.3


def measure_gflops(seconds=CALIBRATION_SECONDS):
    """fp32 matmul throughput of this node, measured for about `seconds`."""
    rows, inner, outer = CALIBRATION_SHAPE
    generator = np.random.default_rng(0)
    activations = generator.standard_normal((rows, inner), dtype=np.float32)  # [R, I]
    weight = generator.standard_normal((inner, outer), dtype=np.float32)  # [I, O]
    activations @ weight  # the first call pays for BLAS start-up, not for arithmetic
    runs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        activations @ weight
        runs += 1
    return 2 * rows * inner * outer * runs / elapsed / 1e9


class Heartbeat(threading.Thread):
    """Announces the node every HEARTBEAT_INTERVAL_S until `stop_event` is set, through Redis outages."""

    def __init__(self, client, token, describe, stop_event):
        """describe() -> NodeInfo as of now (free memory and cache contents change)."""
        super().__init__(name="heartbeat", daemon=True)
        self.client, self.token, self.describe, self.stop_event = client, token, describe, stop_event
        self.outage = RedisOutage(logger, "heartbeat")

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.beat()
                delay_s = HEARTBEAT_INTERVAL_S
            except redis.RedisError as error:
                delay_s = self.outage.failed(error)
            except ClusterTokenError as refusal:
                logger.error("%s; not announcing this node", refusal)
                delay_s = HEARTBEAT_INTERVAL_S
            except Exception:  # describe() failing (a cache being rewritten): the next beat tries again
                logger.exception("heartbeat failed")
                delay_s = HEARTBEAT_INTERVAL_S
            self.stop_event.wait(delay_s)

    def beat(self):
        if self.outage.ongoing:
            # A Redis that comes back empty has forgotten the cluster's token: claim it again (or find that
            # a node with another token got there first) before announcing this node in the fresh registry.
            join_cluster(self.client, self.token)
            self.outage.succeeded()
        publish_heartbeat(self.client, self.describe(), self.token)


def node_describer(name, host, list_cached_models, declared_memory=None, port=0, services=None, memory_report=dict):
    """A describe() for Heartbeat. list_cached_models() -> the catalog names of the models this node's cache
    holds now; declared_memory caps what the node offers to model shards; memory_report() -> what its shard
    server holds and whether the process grew past the budget (ShardServer.memory_report)."""
    gflops = measure_gflops()
    started_at = time.time()

    def describe():
        memory = psutil.virtual_memory()
        offered = min(memory.available, declared_memory) if declared_memory else memory.available
        return NodeInfo(
            name=name,
            host=host,
            total_ram=declared_memory or memory.total,
            free_ram=offered,
            cores=os.cpu_count() or 1,
            gflops=gflops,
            started_at=started_at,
            port=port,
            services=services or {},
            cached_models=list_cached_models(),
            memory=memory_report(),
        )

    return describe
