from django.contrib import admin

from inference.models import Node, Plan
from inference.selectors import all_nodes, recent_plans
from inference.services import do_sync_nodes
from inference.topology import cluster_topology


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    """Read-only: nodes describe themselves through their heartbeats."""

    list_display = ["name", "status", "host", "free_ram_gib", "cores", "gflops_measured", "per_step", "last_heartbeat"]
    list_filter = ["status"]
    readonly_fields = [field.name for field in Node._meta.fields]

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        do_sync_nodes()
        plans = recent_plans(limit=1)
        plan = plans[0] if plans else None
        extra_context = {**(extra_context or {}), "plan": plan, "topology": cluster_topology(all_nodes(), plan)}
        return super().changelist_view(request, extra_context)

    @admin.display(description="free RAM", ordering="free_ram")
    def free_ram_gib(self, node):
        return f"{node.free_ram / 1024**3:.2f} GiB"

    @admin.display(description="GFLOP/s", ordering="gflops")
    def gflops_measured(self, node):
        return f"{node.gflops:.1f}"

    @admin.display(description="per step (rolling)")
    def per_step(self, node):
        stats = node.stage_stats
        if not stats:
            return "-"
        return (
            f"{stats['compute_ms']:.1f} ms compute, {stats['wait_ms']:.1f} ms wait, "
            f"{stats['bytes_in']:.0f} B in, {stats['bytes_out']:.0f} B out, batch {stats['batch']:.1f}"
        )


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["id", "model_name", "layer_ranges", "context_length", "replaces", "created_at"]
    readonly_fields = ["model_name", "context_length", "stages", "replaces", "created_at"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="stages")
    def layer_ranges(self, plan):
        return " → ".join(f"{stage['node']} [{stage['layers'][0]}–{stage['layers'][1] - 1}]" for stage in plan.stages)
