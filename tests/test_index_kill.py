"""A killed `pcclip index` leaves the old index whole (or none), never a torn one: real processes, real kills."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pcclip_cli.retrieval import MANIFEST_FILE, build_index, load_index


def start_index(args, home):
    env = {**os.environ, "PCCLIP_HOME": str(home), "PCCLIP_DEVICE": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "pcclip_cli.cli.main", "index", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_for(predicate, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def test_killed_rebuild_leaves_the_old_index(world, tmp_path):
    out = tmp_path / "idx"
    first = tmp_path / "first10.jsonl"
    first.write_text("".join(json.dumps({**json.loads(line), "image": str(world / json.loads(line)["image"])}) + "\n"
                             for line in (world / "captions.jsonl").read_text().splitlines()[:10]))
    build_index([first], out, model="pcclip-micro")
    old_manifest = (out / MANIFEST_FILE).read_text()
    # An empty embedding cache and batches of one keep the new build busy long enough to be killed mid-way.
    proc = start_index([world / "captions.jsonl", "--out", out, "--model", "pcclip-micro", "--batch-size", "1",
                        "--json"], tmp_path / "fresh-home")
    try:
        # items.sqlite appears in the temp directory when embedding starts: kill the build there.
        started = wait_for(lambda: any(tmp_path.glob(".idx.partial-*/items.sqlite")), proc)
        assert started, proc.communicate()[1].decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert any(tmp_path.glob(".idx.partial-*")), "the kill should land inside the build"
    assert (out / MANIFEST_FILE).read_text() == old_manifest
    idx = load_index(out)
    assert idx.count == 10
    idx.close()
    # The killed build's temp directory is swept by the next build, which then completes.
    assert build_index([world / "captions.jsonl"], out, model="pcclip-micro").count == 60
    assert not list(tmp_path.glob(".idx.*"))


@pytest.mark.parametrize("had_old", [True, False])
def test_kill_between_the_two_renames_is_recovered(world, tmp_path, had_old):
    """The swap moves the old index aside, then the new one in; a kill in between must not lose the old one."""
    out = tmp_path / "idx"
    build_index([world / "captions.jsonl"], out, model="pcclip-micro")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    if had_old:
        os.replace(out, tmp_path / f".idx.old-{dead.pid}")
        assert load_index(out).count == 60  # put back on load
        assert not list(tmp_path.glob(".idx.old-*"))
    else:
        partial = tmp_path / f".idx.partial-{dead.pid}-abc"
        partial.mkdir()
        (partial / MANIFEST_FILE).write_text("{")  # a half-written build
        assert load_index(out).count == 60
        assert not partial.exists()
