"""A prompt longer than a prefill block that joins a running scheduler is read a block per step while the
sequence already generating gets a token every step, and both get the tokens they would get alone."""

from inference.core.sampling import SamplingParams
from inference.core.scheduler import PREFILL_BLOCK_TOKENS

GREEDY = SamplingParams()
PARAGRAPH = "Early sailors kept land in sight, steering by headlands and river mouths, and later by the stars. "


def alone(engine, prompt, max_tokens):
    generation = engine.generate(prompt, max_tokens, GREEDY)
    list(generation)
    return generation.results[0].token_ids


def test_a_long_prompt_is_read_in_blocks_while_the_other_sequence_keeps_decoding(engine):
    short = engine.tokenizer.encode("The three primary colors are")
    long = engine.tokenizer.encode(PARAGRAPH * 40)[: 2 * PREFILL_BLOCK_TOKENS + 50]
    scheduler = engine.scheduler()
    first = scheduler.add(short, 12, GREEDY)
    tokens = {first: [delta.token_id for delta in scheduler.step().deltas]}  # the short prompt read, a first token
    second = scheduler.add(long, 4, GREEDY)
    tokens[second] = []
    steps_until_second_token = 0
    while scheduler:
        step = scheduler.step()
        if not tokens[second]:
            steps_until_second_token += 1
            assert [delta.sequence for delta in step.deltas if delta.token_id is not None].count(first) == 1
        for delta in step.deltas:
            if delta.token_id is not None:
                tokens[delta.sequence].append(delta.token_id)

    assert steps_until_second_token == 3  # blocks of 256, 256 and 50 tokens
    assert tokens[second] == alone(engine, long, 4)
    assert tokens[first] == alone(engine, short, 12)
