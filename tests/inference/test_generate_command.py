"""`manage.py generate`: streamed text with a stats line, or one JSON object on the last line."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def generate(*args) -> str:
    out = StringIO()
    call_command("generate", *args, stdout=out)
    return out.getvalue()


def test_json_output_has_prompt_and_generated_ids_text_and_stats(smollm2_gguf, engine):
    output = generate("--model", str(smollm2_gguf), "--prompt", "The capital of France is", "--max-tokens", "8", "--json")
    report = json.loads(output.strip().splitlines()[-1])
    assert report["prompt_token_ids"] == engine.tokenizer.encode("The capital of France is")
    assert len(report["token_ids"]) == 8 and report["text"] == engine.tokenizer.decode(report["token_ids"])
    assert report["prompt_tokens"] == len(report["prompt_token_ids"])
    assert report["ttft_s"] > 0 and report["prefill_tok_s"] > 0 and report["decode_tok_s"] > 0


def test_chat_wraps_the_message_in_the_chat_template_and_streams_text_then_stats(smollm2_gguf, engine):
    output = generate("--model", str(smollm2_gguf), "--chat", "Say hello", "--max-tokens", "6")
    stats_line = output.rstrip("\n").splitlines()[-1]
    assert "prompt tokens" in stats_line and "decode" in stats_line and "tok/s" in stats_line
    expected_prompt = len(engine.tokenizer.encode_chat([{"role": "user", "content": "Say hello"}]))
    assert stats_line.startswith(f"[{expected_prompt} prompt tokens")


def test_prompt_file_is_read_as_raw_text(tmp_path, smollm2_gguf, engine):
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("Once upon a time", encoding="utf-8")
    output = generate("--model", str(smollm2_gguf), "--prompt-file", str(prompt_file), "--max-tokens", "2", "--json")
    assert json.loads(output.splitlines()[-1])["prompt_token_ids"] == engine.tokenizer.encode("Once upon a time")


def test_same_seed_and_temperature_give_the_same_tokens(smollm2_gguf):
    args = ("--model", str(smollm2_gguf), "--prompt", "Roses are", "--max-tokens", "8", "--temperature", "0.9", "--top-p", "0.9", "--json")
    first = json.loads(generate(*args, "--seed", "3").splitlines()[-1])["token_ids"]
    assert json.loads(generate(*args, "--seed", "3").splitlines()[-1])["token_ids"] == first


def test_a_bad_model_file_is_a_one_line_command_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 10)
    with pytest.raises(CommandError) as error:
        generate("--model", str(bad), "--prompt", "hi")
    assert "\n" not in str(error.value) and str(bad) in str(error.value)
