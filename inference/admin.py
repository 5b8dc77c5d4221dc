from functools import partial

from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from inference.cache.peers import running_fetches
from inference.models import ModelEntry, ModelMark, ModelSource, Node, Plan
from inference.plumbing.redis import redis_client
from inference.selectors import llm_statuses, nodes_as_heartbeats_say, recent_plans, serving_choice
from inference.services import ModelCacheError, do_mark_model, do_send_to_live_nodes
from inference.tasks import evict_cached_model, fetch_on_live_nodes, verify_cached_model
from inference.cluster.heartbeat import read_heartbeats
from inference.cluster.topology import cluster_topology


class ModelSourceInline(admin.TabularInline):
    model = ModelSource
    extra = 0
    fields = ["position", "kind", "location", "convert", "sha256"]


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    list_display = [
        "name", "kind", "format", "size_in_mb", "short_sha256", "nodes_holding", "fetches", "runs_now", "serves",
        "is_default", "pinned",
    ]
    list_filter = ["kind", "is_default", "pinned"]
    search_fields = ["name", "sha256"]
    readonly_fields = ["profile"]
    inlines = [ModelSourceInline]
    actions = [
        "pull_to_all_nodes", "verify_on_all_nodes", "evict_from_all_nodes", "mark_for_grounded_answers",
        "mark_for_plain_chat",
    ]

    class Media:
        js = ["inference/fetch_progress.js"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("holdings")

    def changelist_view(self, request, extra_context=None):
        # One Redis read per page, not one per row.
        client = redis_client()
        self.running = running_fetches(client)
        self.statuses = {status.name: status for status in llm_statuses(client)}
        self.choices = [serving_choice(use, list(self.statuses.values())) for use, _ in ModelMark.USE_CHOICES]
        if request.method == "GET":
            self.show_choices(request)
        return super().changelist_view(request, extra_context)

    def show_choices(self, request):
        """Which LLM serves each use now; a warning when one it would rather be cannot run (its nodes left)."""
        uses = dict(ModelMark.USE_CHOICES)
        for choice in self.choices:
            line = f"{uses[choice.use]}: {choice.name} ({'auto' if choice.mark == ModelMark.AUTO else 'marked'})"
            if not choice.passed_over:
                self.message_user(request, line, messages.INFO)
                continue
            reasons = "; ".join(f"{status.name} cannot run now: {status.why_not}" for status in choice.passed_over)
            self.message_user(request, f"{line}, falling back: {reasons}", messages.WARNING)

    @admin.display(description="runs now")
    def runs_now(self, model):
        status = getattr(self, "statuses", {}).get(model.name)
        if status is None:
            return "-"
        if status.can_run:
            return f"yes, ~{status.decode_tok_s:.1f} tok/s"
        return format_html('<span title="{}">no</span>', status.why_not)

    @admin.display(description="serves")
    def serves(self, model):
        return ", ".join(choice.use for choice in getattr(self, "choices", []) if choice.name == model.name) or "-"

    @admin.display(description="size", ordering="size")
    def size_in_mb(self, model):
        return f"{model.size / 1e6:.1f} MB"

    @admin.display(description="sha256")
    def short_sha256(self, model):
        return format_html('<code title="{}">{}…</code>', model.sha256, model.sha256[:12])

    @admin.display(description="held by")
    def nodes_holding(self, model):
        return ", ".join(holding.node_name for holding in model.holdings.all()) or "-"

    @admin.display(description="running fetches")
    def fetches(self, model):
        running = getattr(self, "running", {}).get(model.name, {})
        return format_html_join(
            "",
            '<div>{} ← {} <progress max="{}" value="{}"></progress></div>',
            ((node, state["from"], state["total"] or 0, state["done"]) for node, state in sorted(running.items())),
        ) or "-"

    def send_to_all_nodes(self, request, queryset, send, verb):
        """send(model name) -> {node name: ...} for every live node it was sent to."""
        for model in queryset:
            try:
                sent = send(model.name)
            except ModelCacheError as error:
                self.message_user(request, str(error), messages.ERROR)
                continue
            if sent:
                self.message_user(request, f"{model.name}: {verb} on {', '.join(sent)}.", messages.SUCCESS)
            else:
                self.message_user(request, f"{model.name}: no live node runs a worker.", messages.WARNING)

    @admin.action(description="Pull to all nodes")
    def pull_to_all_nodes(self, request, queryset):
        self.send_to_all_nodes(request, queryset, fetch_on_live_nodes, "pulling")

    @admin.action(description="Verify on all nodes (a corrupt copy is quarantined)")
    def verify_on_all_nodes(self, request, queryset):
        self.send_to_all_nodes(request, queryset, partial(do_send_to_live_nodes, verify_cached_model), "verifying")

    @admin.action(description="Evict from all nodes")
    def evict_from_all_nodes(self, request, queryset):
        self.send_to_all_nodes(request, queryset, partial(do_send_to_live_nodes, evict_cached_model), "evicting")

    def mark_for(self, request, queryset, use):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one LLM.", messages.ERROR)
            return
        model = queryset.get()
        try:
            do_mark_model(use, model.name)
        except ModelCacheError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"Marked {model.name} for {dict(ModelMark.USE_CHOICES)[use]}.", messages.SUCCESS)

    @admin.action(description="Mark for grounded answers (kotatsu)")
    def mark_for_grounded_answers(self, request, queryset):
        self.mark_for(request, queryset, ModelMark.ANSWERS)

    @admin.action(description="Mark for plain chat")
    def mark_for_plain_chat(self, request, queryset):
        self.mark_for(request, queryset, ModelMark.CHAT)


@admin.register(ModelMark)
class ModelMarkAdmin(admin.ModelAdmin):
    """The marks set (a use without one follows its setting); a mark without a model is "auto"."""

    list_display = ["use", "marked", "serving_now"]
    fields = ["use", "model"]

    def changelist_view(self, request, extra_context=None):
        self.statuses = llm_statuses()
        return super().changelist_view(request, extra_context)

    @admin.display(description="marked")
    def marked(self, mark):
        return mark.model.name if mark.model else "auto (the largest LLM the live nodes run at an interactive speed)"

    @admin.display(description="serving now")
    def serving_now(self, mark):
        return serving_choice(mark.use, getattr(self, "statuses", None)).name


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    """Read-only: nodes describe themselves through their heartbeats.

    The list shows what the heartbeats in Redis say now, without saving it: the table is brought in line
    by beat's sync_nodes task every 5 s, and a page view must not write."""

    list_display = ["name", "current_status", "host", "free_ram_gib", "stage_memory", "cores", "gflops_measured", "per_step", "beat_at"]
    list_filter = ["status"]
    readonly_fields = [field.name for field in Node._meta.fields]

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        client = redis_client()
        nodes, _ = nodes_as_heartbeats_say(client)
        # One Redis read per page, not one per row.
        self.current = {node.name: node for node in nodes}
        # Memory is live state the heartbeats carry, not kept in the Node table.
        self.memory = {info.name: info.memory for info in read_heartbeats(client, settings.CLUSTER_TOKEN)}
        plans = recent_plans(limit=1)
        plan = plans[0] if plans else None
        extra_context = {**(extra_context or {}), "plan": plan, "topology": cluster_topology(nodes, plan)}
        return super().changelist_view(request, extra_context)

    def now(self, node):
        return getattr(self, "current", {}).get(node.name, node)

    @admin.display(description="status", ordering="status")
    def current_status(self, node):
        return self.now(node).get_status_display()

    @admin.display(description="free RAM", ordering="free_ram")
    def free_ram_gib(self, node):
        return f"{self.now(node).free_ram / 1024**3:.2f} GiB"

    @admin.display(description="stages / budget")
    def stage_memory(self, node):
        """The stages' measured resident bytes against the node's --memory budget, flagged when the process grew past it."""
        memory = getattr(self, "memory", {}).get(node.name)
        if not memory:
            return "-"
        held = f"{memory['stage_bytes'] / 1024**2:.0f}"
        if not memory["budget"]:
            return f"{held} MiB (no budget)"
        text = f"{held} / {memory['budget'] / 1024**2:.0f} MiB"
        if memory["over_budget"]:
            return format_html("{} <strong>over budget: the process grew {} MiB</strong>", text, f"{memory['rss_growth'] / 1024**2:.0f}")
        return text

    @admin.display(description="GFLOP/s", ordering="gflops")
    def gflops_measured(self, node):
        return f"{self.now(node).gflops:.1f}"

    @admin.display(description="last heartbeat", ordering="last_heartbeat")
    def beat_at(self, node):
        return self.now(node).last_heartbeat or "-"

    @admin.display(description="per step (rolling)")
    def per_step(self, node):
        stats = self.now(node).stage_stats
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
