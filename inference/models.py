from django.db import models
from django.utils import timezone


class Node(models.Model):
    """A cluster member as last seen in its Redis heartbeat (synced by services.do_sync_nodes)."""

    UP = "up"
    DOWN = "down"
    LEFT = "left"
    STATUS_CHOICES = [(UP, "up"), (DOWN, "down (missed heartbeats)"), (LEFT, "left cleanly")]

    name = models.CharField(max_length=63, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=0, help_text="web server port, 0 when the node runs none")
    services = models.JSONField(default=dict, blank=True, help_text="service name -> TCP port")
    total_ram = models.BigIntegerField(default=0)
    free_ram = models.BigIntegerField(default=0, help_text="bytes offered to model shards")
    cores = models.PositiveIntegerField(default=1)
    gflops = models.FloatField(default=0.0, help_text="measured fp32 matmul throughput at start")
    cached_models = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=8, choices=STATUS_CHOICES, default=UP)
    started_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    stage_stats = models.JSONField(default=dict, blank=True, help_text="rolling per-token stats of its shard server")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Plan(models.Model):
    """Which node runs which layers of a model, in pipeline order."""

    model_name = models.CharField(max_length=255)
    context_length = models.PositiveIntegerField()
    stages = models.JSONField(help_text='[{"node": name, "layers": [first, stop]}, ...] in pipeline order')
    created_at = models.DateTimeField(default=timezone.now)
    replaces = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replaced_by",
        help_text="the plan that lost a node and was re-planned into this one",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.model_name} ({len(self.stages)} stages)"
