"""`manage.py generate --context N`: the engine's context length, which bounds prompt and answer (and, with
--cluster, the KV cache every stage holds); a prompt that does not fit, or a bad N, is one line."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def generate(*args) -> dict:
    out = StringIO()
    call_command("generate", *args, "--json", stdout=out)
    return json.loads(out.getvalue().splitlines()[-1])


def test_an_answer_stops_where_the_context_is_full(smollm2_gguf, engine):
    prompt = "Once upon a time there was a"
    n_prompt = len(engine.tokenizer.encode(prompt))
    report = generate("--model", str(smollm2_gguf), "--prompt", prompt, "--max-tokens", "50", "--context", str(n_prompt + 4))
    # The first token comes from the prompt; each later one needs one more position of the context.
    assert len(report["token_ids"]) == 5


def test_a_prompt_longer_than_the_context_is_one_line(smollm2_gguf):
    with pytest.raises(CommandError) as error:
        generate("--model", str(smollm2_gguf), "--prompt", "one two three four five six seven eight", "--context", "4")
    assert "\n" not in str(error.value) and "4-token context" in str(error.value)


def test_a_context_below_two_tokens_is_refused(smollm2_gguf):
    with pytest.raises(CommandError) as error:
        generate("--model", str(smollm2_gguf), "--prompt", "hi", "--context", "0")
    assert str(error.value) == "--context must be at least 2 tokens, not 0"
