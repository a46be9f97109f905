"""`pcclip generate`: records, resume without duplicates, shards, kinds, settings checks and bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import assert_clean_error
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.generation.run import (
    GenerateConfig,
    generate,
    generate_class_comparatives,
    generate_descriptions,
)

FIELDS = {"key", "kind", "first", "second", "first_caption", "second_caption", "text", "llm", "backend", "prompt",
          "prompt_sha256", "params"}


def lines(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(ln) for ln in raw.decode().splitlines()]


def gen(cli, *args):
    res = cli("generate", *args, "--json")
    assert res.code == 0, res.stderr
    return res.json()


def test_template_pairs_through_the_cli_then_rerun_makes_no_calls(cli, world, tmp_path):
    out = tmp_path / "comps.jsonl"
    args = ["--llm", "template", "--captions", world / "captions.jsonl", "--out", out, "--pairs", "30", "--seed", "1"]
    first = gen(cli, *args)
    assert first["generated"] == 30 and first["llm_calls"] == 30 and first["skipped"] == 0
    recs = lines(out)
    assert len(recs) == 30 and len({r["key"] for r in recs}) == 30
    captions = {json.loads(ln)["id"]: json.loads(ln) for ln in (world / "captions.jsonl").read_text().splitlines()}
    for r in recs:
        assert set(r) == FIELDS and r["kind"] == "pairs" and r["backend"] == "template"
        assert r["first"] != r["second"] and r["first_caption"] == captions[r["first"]]["caption"]
        assert r["key"] == f"{r['first']} -> {r['second']}" and len(r["text"]) > 20
        assert r["params"] == {"max_tokens": 80, "temperature": 0.0, "stop": ["\nQ:"]}
    again = gen(cli, *args)
    assert again["llm_calls"] == 0 and again["skipped"] == 30 and again["generated"] == 0
    assert out.read_bytes().count(b"\n") == 30
    # A larger sample with the same seed extends the first one: only the 10 new pairs are generated.
    more = gen(cli, *args[:-4], "--pairs", "40", "--seed", "1")
    assert more["generated"] == 10 and more["skipped"] == 30
    assert len({r["key"] for r in lines(out)}) == 40


def test_shards_are_disjoint_and_cover_the_plan(cli, world, tmp_path):
    base = ["--llm", "template", "--captions", world / "captions.jsonl", "--images", "7"]
    whole = tmp_path / "whole.jsonl"
    gen(cli, *base, "--out", whole)
    keys = [r["key"] for r in lines(whole)]
    assert len(keys) == 42  # all ordered pairs of 7 images
    parts = []
    for i in range(3):
        part = tmp_path / f"part{i}.jsonl"
        summary = gen(cli, *base, "--out", part, "--shard", f"{i}/3")
        assert summary["total"] == 14 and summary["shard"] == f"{i}/3"
        parts.append([r["key"] for r in lines(part)])
    assert sorted(k for p in parts for k in p) == sorted(keys)
    assert sum(len(p) for p in parts) == len(set(keys))
    # The texts do not depend on how the work was split.
    joined = {r["key"]: r["text"] for i in range(3) for r in lines(tmp_path / f"part{i}.jsonl")}
    assert joined == {r["key"]: r["text"] for r in lines(whole)}


def test_different_settings_are_refused(cli, world, tmp_path):
    out = tmp_path / "c.jsonl"
    base = ["--llm", "template", "--captions", world / "captions.jsonl", "--out", out, "--pairs", "5"]
    gen(cli, *base)
    before = out.read_bytes()
    res = cli("generate", *base, "--max-tokens", "40")
    assert res.code == 1 and "different settings" in res.stderr and "max_tokens 80 (now 40)" in res.stderr
    res = cli("generate", *base, "--prompt", "shapes")
    assert res.code == 1 and "prompt_sha256" in res.stderr
    assert out.read_bytes() == before


def test_a_torn_last_line_is_cut_and_regenerated(world, tmp_path):
    out = tmp_path / "c.jsonl"
    cfg = dict(llm="template", captions=world / "captions.jsonl", out=out, pairs=6)
    generate(GenerateConfig(**cfg))
    whole = out.read_bytes()
    kept, torn = whole.splitlines(keepends=True)[:4], whole.splitlines(keepends=True)[4]
    out.write_bytes(b"".join(kept) + torn[: len(torn) // 2])  # killed in the middle of writing record 5
    summary = generate(GenerateConfig(**cfg))
    assert summary.repaired_bytes == len(torn) // 2
    assert summary.generated == 2 and summary.skipped == 4
    assert sorted(lines(out), key=lambda r: r["key"]) == sorted(lines(tmp_path / "c.jsonl"), key=lambda r: r["key"])
    assert out.read_bytes().count(b"\n") == 6 and set(out.read_bytes().splitlines()) == set(whole.splitlines())


def test_killed_smollm2_run_resumes_without_duplicates(world, tmp_path):
    """SIGKILL a real generate process mid-run, start it again, and get every pair exactly once."""
    out = tmp_path / "smol.jsonl"
    short = tmp_path / "short.txt"  # a short prompt keeps the model's reading time small
    short.write_text("Q: How does an image of {first_caption} differ from one of {second_caption}?\nA:")
    args = [sys.executable, "-m", "pcclip_cli.cli.main", "generate", "--llm", "smollm2-135m", "--captions",
            str(world / "captions.jsonl"), "--out", str(out), "--pairs", "4", "--prompt", str(short),
            "--max-tokens", "8", "--threads", "1", "--batch-size", "1", "--json"]  # one record at a time
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = out.read_bytes().count(b"\n")
    assert 1 <= done_before < 4
    res = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["skipped"] == done_before and summary["llm_calls"] == 4 - done_before
    recs = lines(out)
    assert len(recs) == 4 and len({r["key"] for r in recs}) == 4
    assert all(r["llm"] == "smollm2-135m" and r["backend"] == "llamacpp" for r in recs)
    rerun = json.loads(subprocess.run(args, capture_output=True, text=True, timeout=300, check=True).stdout)
    assert rerun["llm_calls"] == 0


def test_classes_from_names_and_from_confused_pairs(cli, tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("# shapes classes\nred circle\nblue circle\n\nsquare\nred circle\n")
    out = tmp_path / "classes.jsonl"
    summary = gen(cli, "--llm", "template", "--kind", "classes", "--classes", names, "--out", out)
    recs = lines(out)
    assert summary["total"] == 6 and len(recs) == 6  # 3 distinct names, all ordered pairs
    by_key = {r["key"]: r for r in recs}
    rb = by_key["red circle -> blue circle"]
    assert rb["first"] == "red circle" and rb["second"] == "blue circle" and rb["kind"] == "classes"
    assert "red" in rb["text"] and "blue" in rb["text"] and rb["prompt"] == "classes"
    confused = tmp_path / "confused.jsonl"
    confused.write_text(json.dumps({"first": "cat", "second": "lynx", "count": 7}) + "\n"
                        + json.dumps({"first": "lynx", "second": "cat"}) + "\n")
    out2 = tmp_path / "confused_out.jsonl"
    gen(cli, "--llm", "template", "--kind", "classes", "--classes", confused, "--out", out2)
    assert [r["key"] for r in lines(out2)] == ["cat -> lynx", "lynx -> cat"]


def test_classes_from_a_classification_manifest(world, tmp_path):
    summary = generate(GenerateConfig(llm="template", out=tmp_path / "c.jsonl", kind="classes",
                                      classes=world / "classes" / "shape.jsonl", prompt="shapes-classes"))
    assert summary.total == 5 * 4  # the 5 shapes of the world, all ordered pairs
    recs = lines(tmp_path / "c.jsonl")
    assert {r["first"] for r in recs} == {"circle", "square", "triangle", "star", "diamond"}


def test_descriptions_per_class(cli, tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("green triangle\nheron\n")
    out = tmp_path / "desc.jsonl"
    gen(cli, "--llm", "template", "--kind", "descriptions", "--classes", names, "--n", "2", "--out", out)
    recs = lines(out)
    assert [(r["first"], r["n"], r["second"]) for r in recs] == [("green triangle", 0, None), ("green triangle", 1, None),
                                                                   ("heron", 0, None), ("heron", 1, None)]
    assert recs[0]["text"] != recs[1]["text"] and "green" in recs[0]["text"]


def test_library_class_comparatives_for_classify(tmp_path):
    pairs = [("red circle", "blue circle"), ("square", "star"), ("red circle", "blue circle")]
    recs = generate_class_comparatives("template", pairs)
    assert [(r["first"], r["second"]) for r in recs] == pairs[:2]
    assert all(set(r) == FIELDS and r["kind"] == "classes" for r in recs)
    out = tmp_path / "cc.jsonl"
    first = generate_class_comparatives("template", pairs, out=out)
    assert [r["text"] for r in first] == [r["text"] for r in recs]
    size = out.stat().st_size
    assert generate_class_comparatives("template", pairs[:1], out=out) == first[:1]
    assert out.stat().st_size == size  # nothing generated twice
    desc = generate_descriptions("template", ["red star"], 3)
    assert [r["n"] for r in desc] == [0, 1, 2] and desc[0]["kind"] == "descriptions"
    with pytest.raises(PcclipError, match="two different"):
        generate_class_comparatives("template", [("cat", "cat")])


def test_progress_reports_items_and_rates(world, tmp_path):
    calls = []
    generate(GenerateConfig(llm="template", captions=world / "captions.jsonl", out=tmp_path / "p.jsonl", pairs=4),
             progress=lambda done, total, **f: calls.append((done, total, f)))
    assert calls[-1][0] == 4 and calls[-1][1] == 4 and "it/s" in calls[-1][2] and "tok/s" in calls[-1][2]


def test_option_combinations_are_checked(world, tmp_path):
    c = world / "captions.jsonl"
    with pytest.raises(PcclipError, match="--n applies"):
        GenerateConfig(llm="template", captions=c, out=tmp_path / "x", n=2)
    with pytest.raises(PcclipError, match="needs --classes"):
        GenerateConfig(llm="template", out=tmp_path / "x", kind="classes")
    with pytest.raises(PcclipError, match="more than the 2 ordered pairs"):
        generate(GenerateConfig(llm="template", captions=c, out=tmp_path / "x", images=2, pairs=3))


@pytest.mark.parametrize("args, fragments", [
    (["--llm", "template", "--shard", "3/2"], ["--shard 3/2", "between 0 and 1"]),
    (["--llm", "no-such-llm"], ["unknown LLM 'no-such-llm'", "smollm2-135m"]),
    (["--llm", "llamacpp:/nonexistent/m.gguf"], ["GGUF model not found"]),
    (["--llm", "template", "--base-url", "http://127.0.0.1:1/v1"], ["openai backend only"]),
])
def test_bad_input_is_one_clean_error(run_pcclip, world, tmp_path, args, fragments):
    out = tmp_path / "o.jsonl"
    res = run_pcclip("generate", *args, "--captions", world / "captions.jsonl", "--out", out)
    assert_clean_error(res, *fragments)
    assert not out.exists()


def test_bad_files_are_clean_errors(run_pcclip, world, tmp_path):
    one = tmp_path / "one.jsonl"
    one.write_text((world / "captions.jsonl").read_text().splitlines()[0] + "\n")
    out = tmp_path / "o.jsonl"
    assert_clean_error(run_pcclip("generate", "--llm", "template", "--captions", one, "--out", out),
                       "has 1 image", "at least 2")
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "pairs"\ntemplate = "{first_caption} vs {second_captoin}"\n')
    assert_clean_error(run_pcclip("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out",
                                  out, "--prompt", bad), "unknown placeholder {second_captoin}")
    assert not out.exists()
