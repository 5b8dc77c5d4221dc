from datetime import datetime, timezone as dt_timezone

from django.core.exceptions import ValidationError
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

    def take_heartbeat(self, info, stage_stats):
        """What the node's live heartbeat (a cluster.heartbeat.NodeInfo) says about it: it is up."""
        self.host, self.port, self.services = info.host, info.port, info.services
        self.total_ram, self.free_ram, self.cores, self.gflops = info.total_ram, info.free_ram, info.cores, info.gflops
        self.cached_models = info.cached_models
        self.status = Node.UP
        self.started_at = as_datetime(info.started_at)
        self.last_heartbeat = as_datetime(info.beat_at)
        self.stage_stats = stage_stats

    def lose_heartbeat(self, left_cleanly):
        """An up node whose heartbeat is gone: it left, or it stopped beating (crash, cable pulled)."""
        if self.status == Node.UP:
            self.status = Node.LEFT if left_cleanly else Node.DOWN


def as_datetime(timestamp):
    return datetime.fromtimestamp(timestamp, tz=dt_timezone.utc)


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

    def is_same_as(self, stages, context_length):
        return self.stages == stages and self.context_length == context_length


class ModelEntry(models.Model):
    """A model of the shared catalog: what the artifact is, how big, its sha256, and where to get it."""

    KIND_CHOICES = [("llm", "LLM"), ("whisper", "Whisper"), ("embedding", "Embedding")]
    # The format says what the cached blob is, and so whether it must be unpacked before use.
    FORMAT_CHOICES = [
        ("gguf", "GGUF file"),
        ("whisper-pt", "openai-whisper .pt checkpoint"),
        ("directory", "directory (stored as a tar)"),
    ]

    name = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    format = models.CharField(max_length=16, choices=FORMAT_CHOICES)
    size = models.BigIntegerField(help_text="bytes of the artifact")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the artifact every source must produce")
    is_default = models.BooleanField(default=False, help_text="pulled by `manage.py up` (models pull --defaults)")
    pinned = models.BooleanField(default=False, help_text="never evicted to make room")
    profile = models.JSONField(
        default=dict, blank=True,
        help_text="an LLM's run-time bytes (inference.catalog.llm_profile), read from its GGUF once, so that the "
        "nodes able to run it are known without its file",
    )
    min_relevance = models.FloatField(
        null=True, blank=True,
        help_text="an embedding model's cosine of a question to a chunk below which the chunk is not about the question "
        "(retrieval leaves it out): each model has its own scale, so it is measured per model (bench/RESULTS.md, "
        "\"Evaluation set\"); empty for other kinds, and for an imported embedding model until set here",
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "model"

    def __str__(self):
        return self.name

    @property
    def is_directory(self):
        return self.format == "directory"

    @property
    def is_llm(self):
        return self.kind == "llm"

    def accepted_digests(self):
        """The model's own digest, and those of sources that deliver an equivalent artifact of their own
        (OpenAI's original whisper checkpoint, where we otherwise convert)."""
        return {self.sha256} | {source.sha256 for source in self.sources.all() if source.sha256}


class ModelSource(models.Model):
    """One place the artifact can come from; sources are tried in `position` order."""

    KIND_CHOICES = [("url", "HTTP(S) URL"), ("pypi", "file in a PyPI package"), ("path", "local path")]
    CONVERT_CHOICES = [
        ("", "none"),
        ("ct2-whisper", "CTranslate2 whisper → openai-whisper .pt"),
        ("unzip", "zip archive of one folder → that folder"),
    ]

    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="sources")
    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=8, choices=KIND_CHOICES)
    location = models.TextField(
        help_text="url: one URL, or lines 'URL relative/path' that build a folder; "
        "pypi: lines 'NAME==VERSION member [relative/path]' (file members are concatenated in order; a "
        "member ending in / is a folder; a relative path appends to that file of the folder being built); "
        "path: a file or folder on this node"
    )
    convert = models.CharField(max_length=16, choices=CONVERT_CHOICES, blank=True, default="")
    sha256 = models.CharField(
        max_length=64, blank=True, default="", help_text="when this source yields its own artifact; blank: the model's"
    )

    class Meta:
        ordering = ["model", "position"]

    def __str__(self):
        return f"{self.model.name} #{self.position} ({self.kind})"

    @property
    def expected_sha256(self):
        return self.sha256 or self.model.sha256

    def lines(self):
        return [line.split() for line in self.location.splitlines() if line.strip()]


class ModelHolding(models.Model):
    """A node that holds a verified copy of a model in its cache."""

    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="holdings")
    node_name = models.CharField(max_length=63)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "node_name"], name="one_holding_per_node")]
        ordering = ["model", "node_name"]

    def __str__(self):
        return f"{self.model.name} on {self.node_name}"


class ModelFetch(models.Model):
    """A fetch of a model asked of one node, recorded before its task message is sent: a message lost with Redis
    is sent again by beat's resend sweep, and the node's worker claims the row with a conditional UPDATE, so a
    message sent twice fetches once. One row per model and node, asked again when a new pull is requested."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STATE_CHOICES = [(PENDING, "waiting for the node's worker"), (RUNNING, "fetching"), (DONE, "done"), (FAILED, "failed")]
    FINAL_STATES = [DONE, FAILED]

    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="fetch_requests")
    node_name = models.CharField(max_length=63)
    state = models.CharField(max_length=8, choices=STATE_CHOICES, default=PENDING)
    holder = models.CharField(max_length=255, blank=True, default="", help_text="the worker process fetching it (a lease)")
    alive_at = models.DateTimeField(null=True, blank=True, help_text="when its holder last showed it was alive")
    sent_at = models.DateTimeField(default=timezone.now, help_text="when its task message was last sent")
    outcome = models.TextField(blank=True, default="", help_text="the cached path when done, the error when failed")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "node_name"], name="one_fetch_per_model_and_node")]
        ordering = ["model", "node_name"]

    def __str__(self):
        return f"{self.model.name} on {self.node_name} ({self.state})"

    @property
    def is_finished(self):
        return self.state in self.FINAL_STATES


class ModelMark(models.Model):
    """Which LLM serves a use: grounded answers ("kotatsu", the assistant's model in /v1) or plain chat. No row: the
    setting (KOTATSU_ANSWER_MODEL, KOTATSU_CHAT_MODEL); a row without a model: "auto", the largest LLM the live nodes
    run at an interactive speed (inference.selectors.serving_model)."""

    ANSWERS = "kotatsu"
    CHAT = "chat"
    USE_CHOICES = [(ANSWERS, "grounded answers (kotatsu)"), (CHAT, "plain chat")]
    AUTO = "auto"

    use = models.CharField(max_length=16, choices=USE_CHOICES, unique=True)
    model = models.ForeignKey(
        ModelEntry, null=True, blank=True, on_delete=models.SET_NULL, limit_choices_to={"kind": "llm"},
        related_name="marks", help_text="blank: auto",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["use"]
        verbose_name = "model mark"

    def __str__(self):
        return f"{self.get_use_display()}: {self.model.name if self.model else self.AUTO}"

    def clean(self):
        if self.model is not None and not self.model.is_llm:
            raise ValidationError({"model": f"{self.model.name} is not an LLM"})
