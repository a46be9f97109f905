"""core.dirs.build_dir: a directory built beside its target and swapped in, whole, even under kill -9.

The kills are real: a child process builds the directory and SIGKILLs itself right after its Nth os.replace (or
halfway through writing the new files), then recover() - what every later build and reader runs - must leave the
old directory or the new one at the target, never a mix, and nothing else beside it.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pcclip_cli.core.dirs import build_dir, check_out_dir, recover
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.core.io import write_json_atomic

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from pcclip_cli.core.dirs import build_dir

    target, kill_after_replace, kill_mid_write = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
    real_replace, calls = os.replace, [0]

    def replace(src, dst):
        real_replace(src, dst)
        calls[0] += 1
        if calls[0] == kill_after_replace:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    with build_dir(target) as tmp:
        for i in range(5):
            (tmp / f"part-{i}.txt").write_text("new\\n")
            if kill_mid_write and i == 2:
                os.kill(os.getpid(), signal.SIGKILL)
    print("finished")
""")


def _old(target: Path) -> None:
    target.mkdir()
    for i in range(3):
        (target / f"part-{i}.txt").write_text("old\n")


def _state(target: Path) -> str:
    if not target.exists():
        return "absent"
    texts = {p.name: p.read_text() for p in target.iterdir()}
    if texts == {f"part-{i}.txt": "old\n" for i in range(3)}:
        return "old"
    if texts == {f"part-{i}.txt": "new\n" for i in range(5)}:
        return "new"
    return f"torn: {sorted(texts.items())}"


def _run_child(target: Path, kill_after_replace: int, mid_write: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", CHILD, str(target), str(kill_after_replace), "1" if mid_write else "0"],
                          capture_output=True, text=True, env=env, timeout=60)


# (kill after this many os.replace calls, kill halfway through the writes, what a reader sees after recover)
POINTS = [
    (0, True, "old"),  # while the new files are being written
    (1, False, "old"),  # the old directory moved aside, the new one not yet in: recover puts the old one back
    (2, False, "new"),  # the new directory in place, the old one not yet removed
    (0, False, "new"),  # no kill: the build finishes
]


@pytest.mark.parametrize("after_replace,mid_write,expected", POINTS)
def test_kill_9_at_any_point_leaves_old_or_new(tmp_path, after_replace, mid_write, expected):
    target = tmp_path / "out"
    _old(target)
    done = _run_child(target, after_replace, mid_write)
    killed = after_replace or mid_write
    assert done.returncode == (-signal.SIGKILL if killed else 0), done.stderr
    recover(target)
    assert _state(target) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial or aside directory is left


def test_kill_9_on_a_first_build_leaves_no_target(tmp_path):
    target = tmp_path / "out"
    done = _run_child(target, 0, True)
    assert done.returncode == -signal.SIGKILL
    recover(target)
    assert not target.exists() and not list(tmp_path.iterdir())
    # The next build goes through.
    assert _run_child(target, 0, False).returncode == 0
    assert _state(target) == "new"


def test_a_failed_build_keeps_the_old_directory(tmp_path):
    target = tmp_path / "out"
    _old(target)
    with pytest.raises(RuntimeError), build_dir(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert _state(target) == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_outputs_get_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        with build_dir(tmp_path / "built") as tmp:
            write_json_atomic(tmp / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "built").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "built" / "a.json").stat().st_mode) == 0o640


def test_check_out_dir_refuses_files_and_foreign_directories(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(PcclipError, match="is a file"):
        check_out_dir(tmp_path / "file", holds="an index")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "other.txt").write_text("x")
    with pytest.raises(PcclipError, match="is not empty and is not an index; choose"):
        check_out_dir(busy, holds="an index", reusable=lambda p: (p / "manifest.json").exists())
    (busy / "manifest.json").write_text("{}")
    assert check_out_dir(busy, holds="an index", reusable=lambda p: (p / "manifest.json").exists()) == busy
    with pytest.raises(PcclipError, match="--out is required"):
        check_out_dir(None, holds="a run")
    assert check_out_dir(tmp_path / "new", holds="a run") == tmp_path / "new"
