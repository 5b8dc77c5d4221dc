"""`make up` gives its web process half the node's cores for its LLM (kernels and BLAS), leaving the rest to the worker beside it,
unless KOTATSU_THREADS says otherwise."""
import os

from assistant.management.commands.up import web_environment


def test_the_web_process_gets_half_the_cores_for_its_llm(monkeypatch):
    monkeypatch.delenv("KOTATSU_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert web_environment()["KOTATSU_THREADS"] == "4"
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert web_environment()["KOTATSU_THREADS"] == "1"


def test_an_explicit_thread_setting_wins(monkeypatch):
    monkeypatch.setenv("KOTATSU_THREADS", "3")
    assert web_environment()["KOTATSU_THREADS"] == "3"
