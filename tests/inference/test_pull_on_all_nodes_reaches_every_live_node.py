"""`models pull NAME --all-nodes` has every live node's worker fetch the model into its own cache."""
import hashlib
import os

from django.core.management import call_command

from inference.models import ModelEntry


def test_pull_all_nodes_leaves_a_verified_copy_on_each_live_node(start_worker, tmp_path, capsys):
    weights = tmp_path / "weights.gguf"
    weights.write_bytes(os.urandom(2 * 1024 * 1024))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    model = ModelEntry.objects.create(name="everywhere", kind="llm", format="gguf", size=2 * 1024 * 1024, sha256=digest)
    model.sources.create(position=0, kind="path", location=str(weights))
    for node in ("pull-a", "pull-b"):
        start_worker(node, MODEL_CACHE_DIR=tmp_path / node, MODEL_CACHE_PEER_HOST="127.0.0.1")

    call_command("models", "pull", "everywhere", "--all-nodes")

    output = capsys.readouterr().out
    for node in ("pull-a", "pull-b"):
        assert f"everywhere on {node}: {tmp_path / node / 'blobs' / digest}" in output
        assert hashlib.sha256((tmp_path / node / "blobs" / digest).read_bytes()).hexdigest() == digest
