import logging
import os
import sys
import threading
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference import services
from inference.cache.peer_server import PeerServer
from inference.cache.peers import start_advertising, withdraw_advertisement
from inference.cluster.heartbeat import HEARTBEAT_TTL_S, ClusterTokenError, join_cluster, leave_cluster
from inference.cluster.node_agent import Heartbeat, node_describer
from inference.cluster.shard_server import ShardServer
from inference.plumbing.config import lan_address, parse_node_name, parse_size
from inference.plumbing.queues import ANY_NODE_QUEUE, node_queue
from inference.plumbing.redis import check_redis_reachable, redis_client
from inference.plumbing.supervisor import Supervisor, ThreadService, spawn
from inference.selectors import cached_model_names, model_store

log = logging.getLogger(__name__)


@dataclass
class RunningNode:
    """What the services of a running node share."""

    name: str
    options: dict
    declared_memory: int | None  # bytes offered to model shards (--memory), None: the available RAM
    client: object  # Redis
    supervisor: Supervisor
    shard_server: ShardServer | None = None  # its memory report goes into the heartbeat


def serve_model_cache(node):
    """The model cache's blob server, advertised in Redis so that peers copy models from this node."""
    server = PeerServer(model_store(), settings.CLUSTER_TOKEN, port=settings.MODEL_CACHE_PEER_PORT).start()
    url = f"http://{settings.MODEL_CACHE_PEER_HOST}:{server.port}"
    advertising = start_advertising(node.client, node.name, url)
    log.info("model cache served to peers at %s", url)

    def stop():
        advertising.set()
        say_goodbye(withdraw_advertisement, node)
        server.stop()

    return ThreadService("peer blob server", server.thread, stop)


def locate_stage_file(model, layers, with_embedding, with_head):
    """A local GGUF with at least these tensors: the file itself when the coordinator named a path,
    else the model cache's copy, or, when this node lacks the model, only these layers' bytes from a peer."""
    if os.path.isfile(model):
        return model
    return services.do_fetch_model_layers(model, layers, with_embedding, with_head)


def serve_shards(node):
    """The shard server: runs the layers the coordinator's plans give this node (distributed inference)."""
    shard_server = ShardServer(redis_client(), settings.CLUSTER_TOKEN, node.name, locate_stage_file, node.declared_memory)
    node.shard_server = shard_server
    thread = threading.Thread(target=shard_server.serve, args=(node.supervisor.stopping,), name="shard-server")
    thread.start()
    return ThreadService("shard server", thread)


def run_celery_worker(node):
    """The Celery worker, on the queue every node serves and on this node's own."""
    argv = [
        sys.executable, "-m", "celery", "-A", "assistant", "worker",
        "--hostname", f"{node.name}@%h",
        "--queues", f"{ANY_NODE_QUEUE},{node_queue(node.name)}",
        "--concurrency", str(node.options["concurrency"]),
        "--loglevel", "INFO",
    ]
    # The worker's settings must name this node, whatever --name said.
    return spawn("worker", argv, env={**os.environ, "NODE_NAME": node.name})


def beat_heartbeat(node):
    """The heartbeat: announces the node, its memory, speed and cached models every second; last, so that
    the cluster sees the node once it serves."""
    describe = node_describer(
        node.name,
        node.options["host"] or lan_address(),
        list_cached_models=lambda: sorted(cached_model_names()),
        declared_memory=node.declared_memory,
        memory_report=node.shard_server.memory_report,
    )
    heartbeat = Heartbeat(node.client, settings.CLUSTER_TOKEN, describe, node.supervisor.stopping)
    heartbeat.start()

    def stop():
        heartbeat.join(timeout=HEARTBEAT_TTL_S)  # its last beat must not come after the goodbye
        say_goodbye(leave_cluster, node)

    return ThreadService("heartbeat", heartbeat, stop)


def say_goodbye(withdraw, node):
    """A clean stop tells the cluster at once; with Redis away the node's keys expire by themselves instead."""
    try:
        withdraw(node.client, node.name)
    except redis.RedisError as error:
        log.warning("could not tell the cluster that %s stops (%s); its keys expire by themselves", node.name, error)


# Everything a node runs, in start order; each is watched while the node runs and stopped with it (in
# reverse order) when one of them ends, on Ctrl-C or on SIGTERM. Each rides out a Redis outage by itself (the
# Celery worker reconnects too), so only a service that truly died stops the node. Add a node-wide service here.
NODE_SERVICES = [serve_model_cache, serve_shards, run_celery_worker, beat_heartbeat]


class Command(BaseCommand):
    help = (
        "Run this node: its model cache's blob server, its shard server for distributed inference, its Celery "
        "worker and its heartbeat (joins the cluster on REDIS_URL with CLUSTER_TOKEN)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", help="node name (default: NODE_NAME)")
        parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
        parser.add_argument(
            "--memory", help="memory this node offers to model shards, e.g. 8G (default: the available RAM)"
        )
        parser.add_argument("--host", help="address announced to the cluster (default: the LAN interface's)")

    def handle(self, *args, name=None, **options):
        # A ConfigError reaches manage.py, which prints it as the one "configuration error:" line.
        node_name = parse_node_name(name) if name else settings.NODE_NAME
        declared_memory = parse_size("--memory", options["memory"]) if options["memory"] else None
        check_redis_reachable(settings.REDIS_URL)
        client = redis_client()
        try:
            join_cluster(client, settings.CLUSTER_TOKEN)
        except ClusterTokenError as error:
            raise CommandError(str(error)) from None

        supervisor = Supervisor()
        supervisor.install_signal_handlers()
        node = RunningNode(node_name, options, declared_memory, client, supervisor)
        try:
            for start in NODE_SERVICES:
                supervisor.adopt(start(node))
            self.stdout.write(f"node {node_name} joined the cluster", ending="\n")
            self.stdout.flush()
            dead = supervisor.wait()
        finally:
            supervisor.stop_all()
        if dead:
            raise CommandError(f"the {dead.name} {dead.how_it_ended()}; node {node_name} stopped")
