"""When the disk says no (read-only, full), when two runs share an output, and the path and text policies."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_clean_error

MICRO = ["--model", "pcclip-micro"]


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def disk(tmp_path):
    """A 64 KiB tmpfs, so a test can fill it or remount it read-only; skipped where mounting is not allowed."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    d = tmp_path / "disk"
    d.mkdir()
    r = _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d))
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def remount(d: Path, options: str) -> None:
    r = _mount("-o", f"remount,{options}", str(d))
    assert r.returncode == 0, r.stderr


def pcclip(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pcclip_cli.cli.main", *map(str, args)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def keys_of(path: Path) -> list[str]:
    return [json.loads(line)["key"] for line in path.read_text().splitlines()]


# ---- the file system refuses ------------------------------------------------------------------------------------

def test_a_full_disk_is_one_line_and_the_torn_line_is_repaired_on_resume(disk, world, run_pcclip):
    out = disk / "pairs.jsonl"
    args = ("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out", out)
    full = run_pcclip(*args)
    assert_clean_error(full, str(out), "No space left on device", "re-run the same command to resume")
    written = out.read_bytes()
    # A short write at the edge of the disk leaves a torn last line, unless a record ended exactly there.
    torn = not written.endswith(b"\n")
    assert written
    remount(disk, "size=8m")
    again = run_pcclip(*args, "--json")
    assert again.code == 0, again.stderr
    summary = again.json()
    assert (summary["repaired_bytes"] > 0) == torn
    keys = keys_of(out)  # every line parses again: the torn one was cut, not kept
    assert len(keys) == len(set(keys)) == summary["total"] == summary["skipped"] + summary["generated"]


def test_a_read_only_output_is_one_line_in_every_writing_command(disk, world, cli, tmp_path, run_pcclip):
    pairs = tmp_path / "pairs.jsonl"
    assert cli("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out", pairs,
               "--pairs", "40").code == 0
    remount(disk, "ro")
    ro = disk / "sub"
    cases = {
        "generate": ["generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out",
                     ro / "g.jsonl", "--pairs", "5"],
        "filter": ["filter", pairs, "--out", ro / "f.jsonl"],
        "index": ["index", world / "captions.jsonl", "--out", ro / "idx", *MICRO],
        "train": ["train", *MICRO, "--comparatives", pairs, "--captions", world / "captions.jsonl", "--out",
                  ro / "run", "--epochs", "1"],
        # checked before the evaluation starts: the suite would otherwise run in full first
        "eval": ["eval", *MICRO, "--world", world, "--out", ro / "res.json"],
    }
    for name, args in cases.items():
        result = run_pcclip(*args) if name == "generate" else cli(*args)
        assert_clean_error(result, "Read-only file system", "writable disk")
        line = result.error_lines()[0]
        assert str(ro) in line, (name, line)
    assert list(disk.iterdir()) == []


def test_sqlite_and_safetensors_on_a_full_disk_are_one_line(disk, world, cli, tmp_path):
    remount(disk, "size=16k")
    index = cli("index", world / "captions.jsonl", "--out", disk / "idx", *MICRO)
    assert_clean_error(index, str(disk / "idx"), "free some space")
    pairs = tmp_path / "pairs.jsonl"
    assert cli("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out", pairs,
               "--pairs", "20").code == 0
    run = cli("train", *MICRO, "--comparatives", pairs, "--captions", world / "captions.jsonl", "--out",
              disk / "run", "--epochs", "1", "--batch-size", "8")
    assert_clean_error(run, str(disk / "run"), "free some space")


def test_atomic_files_get_the_umasks_permissions(tmp_path, micro_clip):
    from pcclip_cli.clip.checkpoints import save_checkpoint
    from pcclip_cli.core.io import write_json_atomic

    old = os.umask(0o027)
    try:
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        save_checkpoint(micro_clip.model, tmp_path / "ckpt", arch=micro_clip.arch, meta={})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "ckpt" / "model.safetensors").stat().st_mode) == 0o640
    (tmp_path / "a.json").chmod(0o604)  # rewriting keeps an existing file's mode, as open(path, "w") does
    write_json_atomic(tmp_path / "a.json", {"x": 2})
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o604


# ---- one writer per output -------------------------------------------------------------------------------------

HOLD = """
import sys, time
from pcclip_cli.core.locks import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_run_on_a_locked_output_refuses_naming_the_pid(world, tmp_path, cli):
    pairs = tmp_path / "pairs.jsonl"
    assert cli("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out", pairs,
                      "--pairs", "30").code == 0
    outputs = {"generate": tmp_path / "g.jsonl", "index": tmp_path / "idx", "train": tmp_path / "run"}
    commands = {
        "generate": ["generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out",
                     outputs["generate"]],
        "index": ["index", world / "captions.jsonl", "--out", outputs["index"], *MICRO],
        "train": ["train", *MICRO, "--comparatives", pairs, "--captions", world / "captions.jsonl", "--out",
                  outputs["train"], "--epochs", "1"],
    }
    for name, args in commands.items():
        holder = subprocess.Popen([sys.executable, "-c", HOLD, str(outputs[name])], stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            second = cli(*args)  # this test's process is the second writer; the holder is another process
            assert_clean_error(second, f"pid {holder.pid}", "another pcclip run")
            assert not outputs[name].exists(), name
        finally:
            holder.kill()
            holder.wait()
    # the lock goes with its process: once the holder is gone, the same command runs
    assert cli(*commands["generate"], "--pairs", "10").code == 0


def test_two_generate_runs_started_together_never_write_a_key_twice(world, tmp_path):
    out = tmp_path / "pairs.jsonl"
    args = ("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out", out, "--json")
    procs = [pcclip(*args), pcclip(*args)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    keys = keys_of(out)
    assert len(keys) == len(set(keys)) == 60 * 59
    if codes == [0, 1]:  # they overlapped: the second refused in one line, naming the first's pid
        loser = next(r for r in results if r[0] == 1)
        winner = procs[[r[0] for r in results].index(0)]
        errors = [ln for ln in loser[2].splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and f"pid {winner.pid}" in errors[0], loser[2]
    else:  # one finished before the other started: the second found everything done
        assert codes == [0, 0]
        assert sorted(json.loads(r[1])["generated"] for r in results) == [0, 60 * 59]


def test_resume_removes_repeated_keys_and_counts_them(world, tmp_path, run_pcclip):
    out = tmp_path / "pairs.jsonl"
    args = ("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--out", out, "--pairs", "50")
    assert run_pcclip(*args).code == 0
    lines = out.read_text().splitlines(keepends=True)
    with open(out, "a") as fh:  # what two unlocked writers left behind: 20 keys twice
        fh.writelines(lines[:20])
    again = run_pcclip(*args, "--json")
    assert again.code == 0, again.stderr
    assert again.json()["duplicates_removed"] == 20 and again.json()["generated"] == 0
    assert "warning:" in again.stderr and "20 records" in again.stderr
    assert out.read_text().splitlines(keepends=True) == lines


# ---- policies ---------------------------------------------------------------------------------------------------

def test_the_path_policy_follows_the_flag(world, cli, tmp_path, monkeypatch):
    from pcclip_cli.data.records import read_manifest

    monkeypatch.delenv("PCCLIP_ALLOW_OUTSIDE", raising=False)
    image = world / json.loads((world / "captions.jsonl").read_text().splitlines()[0])["image"]
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(image, folder / "in.png")
    (folder / "sub" / "link.png").symlink_to(image)
    rows = {"dotdot": os.path.relpath(image, folder),
            "absolute": str(image), "symlink": "sub/link.png"}
    for how, path in rows.items():
        manifest = folder / f"{how}.jsonl"
        manifest.write_text(json.dumps({"image": "in.png"}) + "\n" + json.dumps({"id": how, "image": path}) + "\n")
        strict = cli("--inside-only", "index", manifest, "--out", tmp_path / f"idx-{how}", *MICRO)
        assert_clean_error(strict, f"{manifest}:2", repr(how), "--allow-outside",
                           {"dotdot": "../", "absolute": "absolute path", "symlink": "symlink"}[how])
        assert len(read_manifest(manifest)) == 2  # the default allows them (datasets live elsewhere)
    inside = folder / "inside.jsonl"
    inside.write_text(json.dumps({"image": "in.png"}) + "\n" + json.dumps({"image": "./sub/../in.png", "id": "b"})
                      + "\n")
    assert cli("--inside-only", "index", inside, "--out", tmp_path / "idx-in", *MICRO).code == 0


def test_a_record_without_text_is_dropped_and_counted_by_filter(tmp_path, cli):
    comps = tmp_path / "c.jsonl"
    rows = [{"key": f"a{i} -> b", "kind": "pairs", "first": f"a{i}", "second": "b", "text": t}
            for i, t in enumerate(["The first is red.", None, "The first is bigger.", None])]
    comps.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli("filter", comps, "--out", tmp_path / "kept.jsonl", "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["records"] == 4 and report["kept"] + report["dropped"] == 4
    assert {"rule": "no-text", "action": "drop", "dropped": 2, "changed": 0} in report["rules"]
    kept = [json.loads(line) for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    assert all(isinstance(r["text"], str) and r["text"] for r in kept)


def test_library_warnings_become_pcclip_warning_lines(world, tmp_path, cli):
    from PIL import Image

    image = world / json.loads((world / "captions.jsonl").read_text().splitlines()[0])["image"]
    palette = Image.open(image).convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=8)
    # partial transparency stays bytes when read back, and Pillow warns when converting such an image to RGB
    palette.save(tmp_path / "a.png", transparency=bytes([0, 128] + [255] * 6))
    shutil.copy(image, tmp_path / "b.png")
    import warnings

    warnings.resetwarnings()  # Python shows a warning once per place: forget earlier tests' images
    result = cli("rank", *MICRO, tmp_path / "a.png", tmp_path / "b.png", "larger")
    assert result.code == 0, result.stderr
    assert "UserWarning:" not in result.stderr and "warnings.warn" not in result.stderr, result.stderr
    warned = [ln for ln in result.stderr.splitlines() if "warning:" in ln and "Transparency" in ln]
    assert len(warned) == 1, result.stderr
