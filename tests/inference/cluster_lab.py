"""A throw-away cluster for integration tests and benchmarks: a Redis of its own and node processes
(`manage.py node`), each in its own network namespace joined by veth pairs to a bridge when
`ip netns` works here, plain processes on 127.0.0.1 otherwise. Everything is removed on close,
also when the test fails."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from inference.plumbing.embedded_redis import start_embedded_redis
from inference.cluster.heartbeat import read_heartbeats
from inference.plumbing.redis import redis_client

PROJECT_DIR = Path(__file__).resolve().parents[2]
NODE_JOIN_TIMEOUT_S = 90


def namespaces_work():
    probe = f"kt-probe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return False
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return True


def netem_works():
    """Whether this kernel has the netem qdisc (some VM kernels ship without it)."""
    probe = f"kt-netem-{os.getpid()}"
    run("ip", "netns", "add", probe)
    try:
        added = subprocess.run(["ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], capture_output=True)
        return added.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)


def run(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ClusterLab:
    def __init__(self, work_dir, cluster_token, env=None, use_namespaces=None, link=None):
        """link: a tc qdisc for every node's link, e.g. ["netem", "rate", "1gbit", "delay", "0.5ms"]."""
        self.work_dir = Path(work_dir)
        self.cluster_token = cluster_token
        self.env = env or {}
        self.use_namespaces = namespaces_work() if use_namespaces is None else use_namespaces
        self.link = link
        self.tag = uuid.uuid4().hex[:6]
        self.bridge = f"ktbr{self.tag}"
        self.subnet = f"10.{200 + os.getpid() % 50}.{int(self.tag[:2], 16)}"
        self.namespaces = []
        self.nodes = {}  # name -> Popen
        self.links = {}  # name -> (namespace, its end of the veth pair), when nodes run in namespaces
        self.redis_process = None
        self.host = f"{self.subnet}.1" if self.use_namespaces else "127.0.0.1"

    # ------------------------------------------------------------------ set-up and tear-down

    def __enter__(self):
        try:
            if self.use_namespaces:
                run("ip", "link", "add", self.bridge, "type", "bridge")
                # A bridge takes the lowest MAC address of its ports unless it has one of its own: a node's port
                # added later could change it, and the nodes already running would lose Redis for as long as
                # their ARP entry for the bridge lives (~30 s; seen as a clean stop recorded as a crash).
                run("ip", "link", "set", self.bridge, "address", f"02:6b:74:{self.tag[:2]}:{self.tag[2:4]}:{self.tag[4:6]}")
                run("ip", "addr", "add", f"{self.host}/24", "dev", self.bridge)
                run("ip", "link", "set", self.bridge, "up")
            port = free_port()
            self.redis_process = start_embedded_redis(port, self.work_dir / "redis", self.work_dir / "redis.log", host=self.host)
            self.redis_url = f"redis://{self.host}:{port}/0"
            self.client = redis_client(self.redis_url)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        for process in self.nodes.values():
            kill_group(process)
        if self.redis_process is not None:
            self.redis_process.kill()
            self.redis_process.wait()
        for namespace in self.namespaces:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        if self.use_namespaces:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    # ------------------------------------------------------------------ nodes

    def namespace_for(self, index):
        namespace = f"kt{self.tag}n{index}"
        host_side, node_side = f"kt{self.tag}h{index}", f"kt{self.tag}v{index}"
        run("ip", "netns", "add", namespace)
        self.namespaces.append(namespace)
        run("ip", "link", "add", host_side, "type", "veth", "peer", "name", node_side)
        run("ip", "link", "set", host_side, "master", self.bridge)
        run("ip", "link", "set", host_side, "up")
        run("ip", "link", "set", node_side, "netns", namespace)
        inside = ["ip", "netns", "exec", namespace]
        run(*inside, "ip", "link", "set", "lo", "up")
        run(*inside, "ip", "addr", "add", f"{self.subnet}.{index + 2}/24", "dev", node_side)
        run(*inside, "ip", "link", "set", node_side, "up")
        run(*inside, "ip", "route", "add", "default", "via", self.host)
        if self.link:
            # Shape both directions: the node's egress inside, the bridge port's egress outside.
            run(*inside, "tc", "qdisc", "add", "dev", node_side, "root", *self.link)
            run("tc", "qdisc", "add", "dev", host_side, "root", *self.link)
        return inside

    def start_node(self, name, *node_args, wait=True, **env):
        index = len(self.namespaces)
        prefix = self.namespace_for(index) if self.use_namespaces else []
        if self.use_namespaces:
            self.links[name] = (self.namespaces[-1], f"kt{self.tag}v{index}")
        child_env = {
            **os.environ,
            **self.env,
            "REDIS_URL": self.redis_url,
            "CLUSTER_TOKEN": self.cluster_token,
            "PYTHONUNBUFFERED": "1",
            **{key: str(value) for key, value in env.items()},
        }
        log = open(self.work_dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            prefix + [sys.executable, str(PROJECT_DIR / "manage.py"), "node", "--name", name, "--concurrency", "1", *node_args],
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_DIR,
            start_new_session=True,
        )
        self.nodes[name] = process
        if wait:
            self.wait_until_live(name, process)
        return process

    def start_nodes(self, *names):
        """Start the nodes side by side, then wait until every one has joined."""
        processes = [self.start_node(name, wait=False) for name in names]
        for name, process in zip(names, processes):
            self.wait_until_live(name, process)

    def wait_until_live(self, name, process):
        deadline = time.monotonic() + NODE_JOIN_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"node {name} exited with code {process.returncode}: {self.log_tail(name)}")
            if name in self.live_names():
                return
            time.sleep(0.2)
        raise RuntimeError(f"node {name} did not join within {NODE_JOIN_TIMEOUT_S} s: {self.log_tail(name)}")

    def live_names(self):
        return [info.name for info in read_heartbeats(self.client, self.cluster_token)]

    def log_tail(self, name, n_bytes=3000):
        return (self.work_dir / f"{name}.log").read_bytes()[-n_bytes:].decode(errors="replace")

    def stop_node(self, name):
        """A clean exit: SIGTERM, as systemd or docker stop would send."""
        process = self.nodes.pop(name)
        os.kill(process.pid, signal.SIGTERM)
        return process.wait(timeout=60)

    def pause_node(self, name):
        """A hang: SIGSTOP to the node process, which keeps it and its connections but runs nothing.
        It stays in `nodes`, so close() resumes and kills it."""
        os.kill(self.nodes[name].pid, signal.SIGSTOP)

    def cut_link(self, name):
        """A pulled cable: the node's network goes down while its process lives on (namespaces only)."""
        namespace, interface = self.links[name]
        run("ip", "netns", "exec", namespace, "ip", "link", "set", interface, "down")

    def restore_link(self, name):
        namespace, interface = self.links[name]
        inside = ["ip", "netns", "exec", namespace]
        run(*inside, "ip", "link", "set", interface, "up")
        # Taking the link down dropped its routes; the default route is what reaches Redis.
        run(*inside, "ip", "route", "replace", "default", "via", self.host)

    def kill_node(self, name):
        """A crash: SIGKILL to the node process, no chance to say goodbye."""
        process = self.nodes.pop(name)
        process.kill()
        process.wait()
        kill_group(process)


def kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGCONT)  # a paused node, so that nothing of it lingers stopped
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@pytest.fixture
def cluster_lab(transactional_db, tmp_path, settings):
    from tests.conftest import child_env

    # child_env points the nodes at the test database (sqlite file or postgres).
    # One BLAS thread per node: several nodes share this machine's cores, and OpenBLAS threads of
    # idle stages spinning for work would slow the busy one down tenfold.
    env = {"DATABASE_URL": child_env()["DATABASE_URL"], "KOTATSU_THREADS": "1"}
    with ClusterLab(tmp_path, settings.CLUSTER_TOKEN, env=env) as lab:
        yield lab
