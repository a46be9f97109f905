"""Swapping a freshly built index directory into place so that a killed build never leaves a torn one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from pcclip_cli.core.errors import PcclipError

from .layout import MANIFEST_FILE


def _partial_prefix(out: Path) -> str:
    return f".{out.name}.partial-"


def _pid_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(out: Path) -> None:
    """Tidy up after a killed build: drop its temp directory, and put back an old index it had moved aside."""
    if not out.parent.is_dir():
        return
    for d in out.parent.glob(_partial_prefix(out) + "*"):
        if not _pid_alive(d.name[len(_partial_prefix(out)):].split("-")[0]):
            shutil.rmtree(d, ignore_errors=True)
    for d in out.parent.glob(f".{out.name}.old-*"):
        if _pid_alive(d.name.rsplit("-", 1)[-1]):
            continue
        if not out.exists() and (d / MANIFEST_FILE).exists():
            os.replace(d, out)  # killed between the two renames of a swap: the old index is still whole
        else:
            shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def building(out: Path):
    """A temp directory beside `out`, swapped into place on success and removed on failure.

    Swapping is two renames (old out aside, new one in); a kill between them leaves no index at `out`, never
    a torn one, and the next build or load puts the old one back.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_partial_prefix(out)}{os.getpid()}-", dir=out.parent))
    try:
        yield tmp
        aside = None
        if out.exists():
            aside = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, aside)
        os.replace(tmp, out)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_out_dir(out: Path) -> None:
    if out.is_file():
        raise PcclipError(f"--out {out} is a file; give a directory for the index")
    if out.is_dir() and not (out / MANIFEST_FILE).exists() and any(out.iterdir()):
        raise PcclipError(f"--out {out} exists and is not a pcclip index; choose a new or empty directory")

