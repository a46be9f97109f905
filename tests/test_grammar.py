"""Grammar-constrained decoding (llama.cpp GBNF) with the real SmolLM2, batched and one at a time."""

from __future__ import annotations

import json
import re

from conftest import assert_clean_error
from pcclip_cli.core.paths import PROMPTS_DIR

WORD = r"(?:image|shape|picture)"
OBJECT = (r"(?:an? (?:(?:small|medium|large) )?(?:(?:red|orange|yellow|green|blue|purple) )?"
          r"(?:circle|square|triangle|star|diamond)|two shapes|one shape|(?:larger|smaller)(?: than the "
          r"(?:first|second) one)?)")


def test_every_completion_follows_the_shapes_grammar(cli, world, tmp_path):
    out = {}
    for batch in (1, 2):
        out[batch] = tmp_path / f"b{batch}.jsonl"
        res = cli("generate", "--llm", "smollm2-135m", "--captions", world / "captions.jsonl", "--pairs", 2,
                  "--prompt", "shapes", "--grammar", PROMPTS_DIR / "shapes.gbnf", "--max-tokens", 40,
                  "--threads", 1, "--batch-size", batch, "--out", out[batch], "--json")
        assert res.code == 0, res.stderr
    recs = [json.loads(line) for line in out[1].read_text().splitlines()]
    clause = rf"(?:[Tt]he (?:first|second) {WORD} (?:(?:is|has|shows) {OBJECT}|is (?:larger|smaller).*?)|Both .+)"
    for r in recs:
        assert re.fullmatch(rf"{clause}(?:(?:, while |, but | and |, whereas ){clause})?\.", r["text"]), r["text"]
        assert "grammar_sha256" in r["params"]
    batched = {json.loads(line)["key"]: json.loads(line)["text"] for line in out[2].read_text().splitlines()}
    assert batched == {r["key"]: r["text"] for r in recs}


def test_a_grammar_that_does_not_parse_is_one_error_line(run_pcclip, world, tmp_path):
    bad = tmp_path / "bad.gbnf"
    bad.write_text('root ::= "a" | (\n')
    res = run_pcclip("generate", "--llm", "smollm2-135m", "--captions", world / "captions.jsonl", "--pairs", 2,
                     "--grammar", bad, "--out", tmp_path / "o.jsonl")
    assert_clean_error(res, "bad.gbnf", "does not parse")
    assert not (tmp_path / "o.jsonl").exists()
    res = run_pcclip("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--pairs", 2,
                     "--grammar", bad, "--out", tmp_path / "o.jsonl")
    assert_clean_error(res, "--grammar applies to the llamacpp backend only")


def test_backend_flags_that_do_not_apply_are_one_error_line(run_pcclip, world, tmp_path):
    base = ["generate", "--captions", world / "captions.jsonl", "--pairs", 2, "--out", tmp_path / "o.jsonl"]
    res = run_pcclip(*base, "--llm", "smollm2-135m", "--dtype", "bfloat16")
    assert_clean_error(res, "--dtype applies to the transformers backend only")
    res = run_pcclip(*base, "--llm", "template", "--chat")
    assert_clean_error(res, "--chat applies to the llamacpp and transformers backends")
    res = run_pcclip(*base, "--llm", "gemma3-270m", "--chat")
    assert_clean_error(res, "carries no chat template")
    assert not (tmp_path / "o.jsonl").exists()
