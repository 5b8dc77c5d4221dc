import json

from django.core.management.base import BaseCommand

from inference.cluster.planner import GIB
from inference.selectors import nodes_as_heartbeats_say, recent_plans


class Command(BaseCommand):
    help = "Cluster membership: `cluster status` lists the nodes (live ones first) and the latest plan."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        status = actions.add_parser("status", help="nodes as their heartbeats describe them, and the latest plan")
        status.add_argument("--json", action="store_true")

    def handle(self, *args, action, **options):
        nodes, _ = nodes_as_heartbeats_say()
        nodes.sort(key=lambda node: (node.status != node.UP, node.name))
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
                        "last_heartbeat": node.last_heartbeat.isoformat() if node.last_heartbeat else None,
                    }
                    for node in nodes
                ],
                "latest_plan": plans[0].stages if plans else None,
            }
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(f"{'node':<20} {'status':<6} {'host':<16} {'free GiB':>8} {'cores':>5} {'GFLOP/s':>8}  stage ms/step")
        for node in nodes:
            stats = node.stage_stats
            step = f"{stats['compute_ms']:.1f} compute, {stats['wait_ms']:.1f} wait" if stats else "-"
            self.stdout.write(
                f"{node.name:<20} {node.status:<6} {node.host:<16} {node.free_ram / GIB:>8.2f} {node.cores:>5} "
                f"{node.gflops:>8.1f}  {step}"
            )
        if plans:
            stages = ", ".join(f"{s['node']} layers {s['layers'][0]}-{s['layers'][1] - 1}" for s in plans[0].stages)
            self.stdout.write(f"latest plan ({plans[0].model_name}): {stages}")
