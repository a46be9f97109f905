"""Output directories: build one beside its target and swap it in whole, and refuse an --out that holds other things.

`build_dir(target)` yields an empty directory `.NAME.partial-PID-N` beside the target; when the block ends
without an exception the old target (if any) is renamed aside to `.NAME.old-PID`, the new one renamed in, and the
old one removed. A kill -9 at any point leaves one of: the old target untouched (a stale partial beside it), the
old one aside and no target (between the two renames), or the new target (a stale aside beside it).
`recover(target)` - run by every build and by readers - removes what dead processes left and renames an aside
directory back when no target exists, so a reader always sees the old directory or the new one, never a mix.
Directories are created with the umask's permissions, as a plain mkdir would make them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import PcclipError

_counter = itertools.count()


def _partial_prefix(target: Path) -> str:
    return f".{target.name}.partial-"


def _aside_prefix(target: Path) -> str:
    return f".{target.name}.old-"


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


def recover(target: str | os.PathLike) -> None:
    """Tidy up after a killed build of `target`: drop dead builds' partial directories, and put back an old
    target that a killed swap had moved aside (only when no target is in place)."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    for d in target.parent.glob(_partial_prefix(target) + "*"):
        if not _pid_alive(d.name[len(_partial_prefix(target)):].split("-")[0]):
            shutil.rmtree(d, ignore_errors=True)
    for d in target.parent.glob(_aside_prefix(target) + "*"):
        if _pid_alive(d.name[len(_aside_prefix(target)):]):
            continue
        if not target.exists():
            os.replace(d, target)  # killed between the two renames of a swap: the old directory is still whole
        else:
            shutil.rmtree(d, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def build_dir(target: str | os.PathLike) -> Iterator[Path]:
    """An empty directory beside `target`, swapped in for it on success and removed on failure."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    while True:
        tmp = target.parent / f"{_partial_prefix(target)}{os.getpid()}-{next(_counter)}"
        try:
            tmp.mkdir()  # mode 0o777 less the umask, unlike tempfile.mkdtemp's 0o700
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        aside = None
        if target.exists():
            aside = target.parent / f"{_aside_prefix(target)}{os.getpid()}"
            if aside.exists():
                shutil.rmtree(aside)
            os.replace(target, aside)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_out_dir(out: str | os.PathLike | None, *, holds: str, reusable: Callable[[Path], bool] | None = None,
                  fix: str = "choose a new or empty directory") -> Path:
    """`out` as an absolute Path, refused before any work when it is missing, a file, or a non-empty directory
    that `reusable` does not accept. `holds` names what the directory is for, `fix` how to get past a refusal."""
    if not out:
        raise PcclipError(f"--out is required: the directory for {holds}")
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise PcclipError(f"--out {out} is a file; give a directory for {holds}")
    if out.is_dir() and any(out.iterdir()) and not (reusable and reusable(out)):
        what = f" and is not {holds}" if reusable else ""
        raise PcclipError(f"--out {out} is not empty{what}; {fix}")
    return out
