import json

from django.conf import settings
from django.core.management.base import BaseCommand

from inference.cluster.heartbeat import read_heartbeats
from inference.cluster.planner import GIB
from inference.plumbing.redis import redis_client
from inference.selectors import nodes_as_heartbeats_say, recent_plans

MIB = 1024**2


def memory_column(memory):
    """What the node's stages hold (measured) against its --memory budget, e.g. "489/560 MiB" or "489 MiB"."""
    if not memory:
        return "-"
    held = f"{memory['stage_bytes'] / MIB:.0f}"
    return f"{held}/{memory['budget'] / MIB:.0f} MiB" if memory["budget"] else f"{held} MiB"


class Command(BaseCommand):
    help = "Cluster membership: `cluster status` lists the nodes (live ones first) and the latest plan."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        status = actions.add_parser("status", help="nodes as their heartbeats describe them, and the latest plan")
        status.add_argument("--json", action="store_true")

    def handle(self, *args, action, **options):
        client = redis_client()
        nodes, _ = nodes_as_heartbeats_say(client)
        nodes.sort(key=lambda node: (node.status != node.UP, node.name))
        # Memory is live state, not kept in the Node table: what the up nodes' heartbeats say now.
        memory = {info.name: info.memory for info in read_heartbeats(client, settings.CLUSTER_TOKEN)}
        plans = recent_plans(limit=1)
        if options["json"]:
            report = {
                "nodes": [
                    {
                        "name": node.name,
                        "status": node.status,
                        "host": node.host,
                        "free_ram": node.free_ram,
                        "total_ram": node.total_ram,
                        "cores": node.cores,
                        "gflops": node.gflops,
                        "cached_models": node.cached_models,
                        "stage_stats": node.stage_stats,
                        "memory": memory.get(node.name) or None,
                        "last_heartbeat": node.last_heartbeat.isoformat() if node.last_heartbeat else None,
                    }
                    for node in nodes
                ],
                "latest_plan": plans[0].stages if plans else None,
            }
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(
            f"{'node':<20} {'status':<6} {'host':<16} {'free GiB':>8} {'stages/budget':>15} {'cores':>5} {'GFLOP/s':>8}  stage ms/step"
        )
        for node in nodes:
            stats = node.stage_stats
            step = f"{stats['compute_ms']:.1f} compute, {stats['wait_ms']:.1f} wait" if stats else "-"
            self.stdout.write(
                f"{node.name:<20} {node.status:<6} {node.host:<16} {node.free_ram / GIB:>8.2f} "
                f"{memory_column(memory.get(node.name)):>15} {node.cores:>5} {node.gflops:>8.1f}  {step}"
            )
        for name, report in sorted(memory.items()):
            if report and report["over_budget"]:
                self.stdout.write(
                    f"node {name} is over its memory budget: its process grew {report['rss_growth'] / MIB:.0f} MiB "
                    f"since it took its first stage, past --memory {report['budget'] / MIB:.0f} MiB"
                )
        if plans:
            stages = ", ".join(f"{s['node']} layers {s['layers'][0]}-{s['layers'][1] - 1}" for s in plans[0].stages)
            self.stdout.write(f"latest plan ({plans[0].model_name}): {stages}")
