"""Pipelined prefill (issue 13): a prompt of several PREFILL_BLOCK_TOKENS chunks flows through three stages one
chunk after another, so a stage reads a chunk while the stage before it reads the next one; the greedy tokens are
those of the single-process engine, pipelined or not."""
from django.conf import settings

from inference.cluster.coordinator import Coordinator
from inference.core.engine import Engine
from inference.core.sampling import SamplingParams
from inference.core.scheduler import PREFILL_BLOCK_TOKENS
from inference.model_files import cached_model_path
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)

CONTEXT_LENGTH = 1024
MAX_TOKENS = 8
CHUNKS = 4


def long_prompt(tokenizer):
    facts = " ".join(f"Note {index}: the lighthouse on island {index} is painted {('red', 'white', 'blue')[index % 3]}." for index in range(50))
    prompt = tokenizer.encode_chat([{"role": "user", "content": f"{facts}\nWhich colour is the lighthouse on island 7?"}])
    assert (CHUNKS - 1) * PREFILL_BLOCK_TOKENS < len(prompt) <= CHUNKS * PREFILL_BLOCK_TOKENS, len(prompt)
    return prompt


def timeline_by_stage(generation):
    """{node: {chunk: (started, finished)}} of the prompt's reading."""
    stages = {}
    for entry in generation.stats.prefill_timeline:
        stages.setdefault(entry["node"], {})[entry["part"]] = (entry["started_s"], entry["finished_s"])
    return stages


def test_stages_read_a_long_prompt_chunk_by_chunk_and_answer_like_one_process(cluster_lab):
    cluster_lab.start_nodes("alpha", "beta", "gamma")
    model_path = cached_model_path()
    coordinator = Coordinator(cluster_lab.client, settings.CLUSTER_TOKEN, model_path, context_length=CONTEXT_LENGTH, n_nodes=3)
    prompt = long_prompt(coordinator.tokenizer)

    pipelined = coordinator.generate(prompt, MAX_TOKENS, SamplingParams())
    list(pipelined)
    coordinator.pipelined_prefill = False
    whole = coordinator.generate(prompt, MAX_TOKENS, SamplingParams())
    list(whole)
    alone = Engine(model_path, context_length=CONTEXT_LENGTH).generate(prompt, MAX_TOKENS, SamplingParams())
    list(alone)

    assert pipelined.results[0].token_ids == alone.results[0].token_ids
    assert whole.results[0].token_ids == alone.results[0].token_ids
    route = [stage["node"] for stage in pipelined.stats.plans[-1]]
    stages = timeline_by_stage(pipelined)
    assert sorted(stages) == sorted(route)
    assert all(sorted(stages[node]) == list(range(CHUNKS)) for node in route), stages
    for before, after in zip(route, route[1:]):
        for chunk in range(CHUNKS - 1):
            # The next stage starts on a chunk once this one has passed it on, and this one goes on to the chunk
            # after it without waiting for the next stage to be done: the two read at the same time. (Which of
            # them finishes first is up to the scheduler of a machine whose cores the stages share.)
            assert stages[before][chunk][1] <= stages[after][chunk][0], (before, after, chunk, stages)
            assert stages[before][chunk + 1][0] < stages[after][chunk][1], (before, after, chunk, stages)
    rows = {entry["part"]: entry["rows"] for entry in pipelined.stats.prefill_timeline if entry["node"] == route[0]}
    assert sum(rows.values()) == len(prompt) and rows[0] == PREFILL_BLOCK_TOKENS

    # Sent whole, each stage reads the entire prompt before the next one starts.
    stages = timeline_by_stage(whole)
    assert all(list(stages[node]) == [0] for node in route), stages
    for before, after in zip(route, route[1:]):
        assert stages[before][0][1] <= stages[after][0][0]
