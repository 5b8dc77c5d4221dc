import ctypes
import os
import signal
import subprocess
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.plumbing.queues import ANY_NODE_QUEUE, node_queue
from inference.plumbing.config import check_redis_reachable, parse_node_name
from inference.plumbing.supervisor import Child, Supervisor
from inference import services
from inference.cache.config import lan_address, parse_size
from inference.cluster.heartbeat import ClusterTokenError, join_cluster, leave_cluster
from inference.cluster.node_agent import Heartbeat, node_describer
from inference.plumbing.redis import cluster_redis
from inference.cluster.shard_server import ShardServer

PR_SET_PDEATHSIG = 1
CHILD_POLL_INTERVAL_S = 0.5


def celery_worker(node_name, options):
    return [
        sys.executable, "-m", "celery", "-A", "assistant", "worker",
        "--hostname", f"{node_name}@%h",
        "--queues", f"{ANY_NODE_QUEUE},{node_queue(node_name)}",
        "--concurrency", str(options["concurrency"]),
        "--loglevel", "INFO",
    ]


# The child processes a node supervises, as (name, argv builder). Add a node-wide service here
# (the model cache's peer file server, ...) and it is started, watched and stopped with the node.
NODE_SERVICES = [("worker", celery_worker)]


def die_with_parent():
    # A node killed with -9 must not leave its worker consuming tasks for a node that is gone.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def locate_stage_file(model, layers, with_embedding, with_head):
    """A local GGUF with at least these tensors: the file itself when the coordinator named a path,
    else the model cache's copy, or, when this node lacks the model, only these layers' bytes from a peer."""
    if os.path.isfile(model):
        return model
    return services.do_fetch_model_layers(model, layers, with_embedding, with_head)


class Command(BaseCommand):
    help = (
        "Run this node: its Celery worker, its shard server for distributed inference, and its heartbeat "
        "(joins the cluster on REDIS_URL with CLUSTER_TOKEN)."
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
        client = cluster_redis(settings.REDIS_URL)
        try:
            join_cluster(client, settings.CLUSTER_TOKEN)
        except ClusterTokenError as error:
            raise CommandError(str(error)) from None
        os.environ["NODE_NAME"] = node_name

        stop_event = threading.Event()
        supervisor = Supervisor()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop_event.set())
        for service, argv in NODE_SERVICES:
            process = subprocess.Popen(
                argv(node_name, options), stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent
            )
            supervisor.adopt(Child(service, process))
        describe = node_describer(node_name, options["host"] or lan_address(), settings.MODEL_CACHE_DIR, declared_memory)
        Heartbeat(client, settings.CLUSTER_TOKEN, describe, stop_event).start()
        shard_server = ShardServer(cluster_redis(settings.REDIS_URL), settings.CLUSTER_TOKEN, node_name, locate_stage_file)
        serving = threading.Thread(target=shard_server.serve, args=(stop_event,), name="shard-server")
        serving.start()
        self.stdout.write(f"node {node_name} joined the cluster", ending="\n")
        self.stdout.flush()

        dead, shard_server_crashed = None, False
        while not stop_event.wait(CHILD_POLL_INTERVAL_S):
            dead, shard_server_crashed = supervisor.first_exited(), not serving.is_alive()
            if dead or shard_server_crashed:
                break
        stop_event.set()
        leave_cluster(client, node_name)
        serving.join()
        supervisor.stop_all()
        if dead:
            raise CommandError(f"{dead.name} exited with code {dead.process.returncode}; node {node_name} stopped")
        if shard_server_crashed:
            raise CommandError(f"the shard server failed (traceback above); node {node_name} stopped")
