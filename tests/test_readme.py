"""The README's quick start runs as printed: its marked shell block is extracted and run step by step, so the
README cannot drift from the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- quickstart"


def quickstart_block() -> str:
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, "README.md has no quick start block marked for this test"
    after = text[text.index(MARKER):]
    match = re.search(r"```bash\n(.*?)```", after, re.S)
    assert match, "the quick start marker is not followed by a ```bash block"
    return match.group(1)


def test_quickstart_is_the_first_section_and_names_its_size_variables():
    text = README.read_text(encoding="utf-8")
    assert text.split("\n## ")[1].startswith("Quick start")
    block = quickstart_block()
    for var in ("IMAGES", "PAIRS", "LLM"):
        assert f"${{{var}:-" in block, var
    steps = [ln.split()[1] for ln in block.splitlines() if ln.startswith("pcclip ")]
    assert steps == ["data", "generate", "filter", "audit", "train", "rank", "classify", "generate", "distance",
                     "eval", "eval", "index", "retrieve", "report"]


def test_the_quickstart_runs_as_printed(tmp_path, shapes_clip):
    """The chain at tiny sizes (the README's variables), through the real `pcclip` executable, in a fresh folder."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "pcclip"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pcclip_cli.cli.main "$@"\n')
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    script = work / "quickstart.sh"
    script.write_text("set -euo pipefail\n" + quickstart_block(), encoding="utf-8")
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "IMAGES": "60", "PAIRS": "40",
           "LLM": "template", "PYTHONPATH": str(README.parent), "OMP_NUM_THREADS": "1", "COLUMNS": "80"}
    proc = subprocess.run(["bash", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "error:" not in proc.stderr
    qs = work / "qs"
    # Each step's output is there and fed the next one.
    assert (qs / "world" / "world.json").exists()
    assert (qs / "clean.jsonl").stat().st_size > 0
    assert (qs / "pc" / "pcclip.json").exists()
    assert "using batches of" in proc.stderr  # the README's batch is larger than the tiny data: capped, warned
    assert "comparative prompting" in proc.stderr  # classify's last step ran (it acts, or says it has nothing to)
    results = sorted((qs / "results").glob("result-*.json"))
    assert len(results) == 2 and all("metrics" in json.loads(p.read_text()) or json.loads(p.read_text())
                                     for p in results)
    assert (qs / "report.png").stat().st_size > 0
    # Data on stdout: rank's answer, then retrieve's 5 hits, as tab-separated lines.
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    hits = [ln for ln in lines if ln.count("\t") == 3 and ln.split("\t")[0].isdigit()]
    assert [h.split("\t")[0] for h in hits] == ["1", "2", "3", "4", "5"], proc.stdout
    assert all(Path(h.split("\t")[2]).is_file() for h in hits)  # whole paths, uncut
    answer = [ln.split("\t") for ln in lines if ln.startswith(("first\t", "second\t"))]
    assert len(answer) == 1 and answer[0][1].endswith(("img_000001.png", "img_000002.png")), proc.stdout
    # The same `train` again is a no-op that says so.
    train = next(ln for ln in quickstart_block().replace("\\\n", "").splitlines() if ln.startswith("pcclip train"))
    again = subprocess.run(["bash", "-c", train.split("#")[0]], cwd=work, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr


@pytest.mark.parametrize("line", ["pcclip retrieve --index qs/idx --attribute blue --model qs/pc --k 5"])
def test_the_quickstart_lines_tests_rely_on_are_in_the_readme(line):
    assert line in quickstart_block()
