"""`models use kotatsu NAME|auto` (and `chat`) marks the LLM that serves a use: a marked LLM serves while the live nodes
can run it, whatever its speed, and hands over to the largest smaller one when they cannot; `models list` shows the
marks and whether each LLM runs now; a name that is no LLM is refused in one line."""
import json

import pytest
from django.core.management import CommandError, call_command

from inference.models import ModelMark
from inference.selectors import serving_model
from tests.inference.llm_nodes import QWEN, SMOLLM2, cluster_redis_db, llm_nodes  # noqa: F401  (fixtures)


def test_a_marked_llm_serves_while_it_can_run_then_a_smaller_one(llm_nodes, settings, capsys):
    llm_nodes.announce("alpha", "beta", "gamma")
    settings.LLM_INTERACTIVE_TOK_S = 100.0  # "auto" would take SmolLM2; a mark does not care about speed

    call_command("models", "use", "kotatsu", QWEN)
    call_command("models", "use", "chat", SMOLLM2)
    assert capsys.readouterr().out.splitlines() == [f"kotatsu: {QWEN} -> {QWEN}", f"chat: {SMOLLM2} -> {SMOLLM2}"]
    assert serving_model(ModelMark.ANSWERS) == QWEN
    assert serving_model(ModelMark.CHAT) == SMOLLM2

    llm_nodes.leave("gamma")
    call_command("models", "use")
    kotatsu, chat = capsys.readouterr().out.splitlines()
    assert kotatsu.startswith(f"kotatsu: {QWEN} -> {SMOLLM2}; {QWEN} cannot run now: the model needs ")
    assert chat == f"chat: {SMOLLM2} -> {SMOLLM2}"

    call_command("models", "list", "--json")
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[QWEN]["can_run"] is False and "GiB missing" in rows[QWEN]["why_not"] and rows[QWEN]["serves"] == []
    assert rows[SMOLLM2]["can_run"] is True and rows[SMOLLM2]["serves"] == ["kotatsu", "chat"]
    assert "can_run" not in rows["whisper-base"]

    call_command("models", "use", "kotatsu", "auto")
    assert capsys.readouterr().out.startswith(f"kotatsu: auto -> {SMOLLM2}; {QWEN} cannot run now: ")
    call_command("models", "list")
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "runs now (~" in lines[SMOLLM2] and lines[SMOLLM2].endswith("[serves kotatsu]  [serves chat]")
    assert "cannot run now: the model needs " in lines[QWEN]


@pytest.mark.parametrize("arguments, message", [
    (["kotatsu", "whisper-base"], "whisper-base is not an LLM (kind: whisper)"),
    (["chat", "no-such-model"], "'no-such-model' is not in the model catalog"),
    (["kotatsu"], "give the LLM that serves kotatsu (a catalog LLM's name, or auto)"),
])
def test_a_name_that_is_no_llm_is_refused_in_one_line(llm_nodes, arguments, message):
    with pytest.raises(CommandError) as refused:
        call_command("models", "use", *arguments)
    assert str(refused.value).startswith(message)
    assert not ModelMark.objects.exists()
