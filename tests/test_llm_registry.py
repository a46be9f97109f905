"""The LLM backend registry: a backend defined only here, registered with one line, runs `pcclip generate`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from pcclip_cli.core.errors import PcclipError
from pcclip_cli.llm.base import LLM, Completion, Params, Request
from pcclip_cli.llm.registry import BUILTIN_BACKENDS, backend_options, list_llms, register, unregister


@dataclass(frozen=True)
class EchoOptions:
    suffix: str = ""  # appended to every text: changes the texts
    shout: bool = False  # upper-cases every text: changes the texts
    pause: float = 0.0  # would only change the speed: not part of the resume identity

    def __post_init__(self):
        if self.pause < 0:
            raise PcclipError(f"pause must be >= 0, got {self.pause}")


class EchoLLM(LLM):
    """Says which two items it was given (a backend for the registry's test)."""

    backend = "echo"
    options_class = EchoOptions
    cli_flags = {"--chat": "shout"}
    text_options = ("suffix", "shout")

    def complete(self, requests: list[Request], params: Params) -> list[Completion]:
        out = []
        for req in requests:
            text = f"{self.target}: {req.first} differs from {req.second}{self.options.suffix}"
            text = text.upper() if self.options.shout else text
            out.append(Completion(text, len(text.split()), "stop"))
        return out


@pytest.fixture
def echo():
    register("echo", EchoLLM)  # the one line a new backend needs
    yield
    unregister("echo")


def _generate(cli, world, out, *extra):
    return cli("generate", "--llm", "echo:parrot", "--captions", world / "captions.jsonl", "--pairs", 5,
               "--out", out, "--json", *extra)


def test_a_registered_backend_runs_generate_and_resume_checks_its_text_options(echo, cli, world, tmp_path):
    out = tmp_path / "echo.jsonl"
    res = _generate(cli, world, out, "--llm-option", "suffix=!", "--llm-option", "pause=0.5")
    assert res.code == 0, res.stderr
    summary = res.json()
    assert summary["backend"] == "echo" and summary["generated"] == 5 and summary["skipped"] == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 5 and all(r["text"].startswith("parrot: ") and r["text"].endswith("!") for r in recs)
    assert all(r["backend"] == "echo" and r["params"]["suffix"] == "!" for r in recs)
    assert "pause" not in recs[0]["params"] and "shout" not in recs[0]["params"]  # default or not text-deciding

    # The same text options resume (a speed-only option may change): nothing is generated twice.
    again = _generate(cli, world, out, "--llm-option", "suffix=!", "--llm-option", "pause=0")
    assert again.code == 0, again.stderr
    assert again.json()["generated"] == 0 and again.json()["skipped"] == 5

    # A changed text-deciding option refuses to append, naming the option; the file is untouched.
    before = out.read_bytes()
    changed = _generate(cli, world, out, "--llm-option", "suffix=?")
    assert changed.code == 1 and changed.stdout == ""
    assert "different settings" in changed.stderr and "suffix '!' (now '?')" in changed.stderr
    # A shared flag the backend declares maps onto its option, and counts as text-deciding too.
    shouted = _generate(cli, world, out, "--llm-option", "suffix=!", "--chat")
    assert shouted.code == 1 and "shout" in shouted.stderr
    assert out.read_bytes() == before

    fresh = tmp_path / "loud.jsonl"
    loud = _generate(cli, world, fresh, "--chat")
    assert loud.code == 0, loud.stderr
    assert all(json.loads(x)["text"].isupper() for x in fresh.read_text().splitlines())


def test_flags_and_options_the_backend_does_not_declare_are_clean_errors(echo, cli, world, tmp_path):
    out = tmp_path / "x.jsonl"
    res = _generate(cli, world, out, "--threads", 2)
    assert res.code == 1 and "--threads applies to the llamacpp backend only; echo:parrot uses echo" in res.stderr
    res = _generate(cli, world, out, "--base-url", "http://127.0.0.1:1/v1", "--timeout", 3)
    assert res.code == 1 and "--base-url, --timeout apply to the openai backend only" in res.stderr
    res = _generate(cli, world, out, "--llm-option", "volume=11")
    assert res.code == 1 and "no such option" in res.stderr and "pause, shout, suffix" in res.stderr
    res = _generate(cli, world, out, "--llm-option", "pause=soon")
    assert res.code == 1 and "expected a float" in res.stderr
    res = _generate(cli, world, out, "--llm-option", "pause=-1")
    assert res.code == 1 and "pause must be >= 0" in res.stderr
    assert not out.exists()
    # The built-in backends' own declarations give the same errors they always did.
    res = cli("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out", out,
              "--llm-option", "n_ctx=4096")
    assert res.code == 1 and "template backend has no such option; its options: relations" in res.stderr


def test_the_registry_lists_backends_and_their_flags_are_real_generate_flags(echo, cli):
    assert ("echo:TARGET", "echo") in {(r["name"], r["backend"]) for r in list_llms()}
    help_text = cli("generate", "--help").stdout
    from pcclip_cli.llm.registry import all_cli_flags

    for flag in all_cli_flags():
        assert flag in help_text, flag
    assert backend_options("smollm2-135m", {"--threads": 2, "--chat": True}) == {"n_threads": 2, "chat": True}
    with pytest.raises(PcclipError, match="built-in"):
        unregister(BUILTIN_BACKENDS[0])


def test_text_identity_of_the_built_in_backends_matches_what_records_carried(tmp_path):
    """Files written before the registry resume: the same options give the same recorded params."""
    from pcclip_cli.llm.registry import text_identity

    grammar = tmp_path / "g.gbnf"
    grammar.write_text('root ::= "a"\n')
    import hashlib

    sha = hashlib.sha256(grammar.read_bytes()).hexdigest()
    assert text_identity("smollm2-135m", {"grammar": str(grammar), "chat": True, "n_threads": 3}) == {
        "grammar_sha256": sha, "chat": True}
    assert text_identity("smollm2-135m-hf", {"dtype": "bfloat16", "device": "cpu"}) == {"dtype": "bfloat16"}
    assert text_identity("gpt-4o", {"concurrency": 8, "base_url": "http://h/v1"}) == {}
    assert text_identity("template", {}) == {}
