"""One writer per output: an advisory (fcntl) lock that a second run on the same output meets at once."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import PcclipError, note_output
from .paths import home


class OutputBusyError(PcclipError):
    """Another live pcclip process holds the lock on this output."""


def lock_path(output: str | os.PathLike) -> Path:
    """The lock file for `output`: under $PCCLIP_HOME/locks, named by the output's resolved path.

    Not beside the output: a failed or refused run then leaves nothing in the user's folders, and a read-only
    output folder still gets its lock (the write then fails with its own clear error)."""
    resolved = str(Path(output).expanduser().resolve())
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return home() / "locks" / f"{Path(resolved).name[:40]}-{digest}.lock"


def _holder(fh) -> str:
    fh.seek(0)
    text = fh.read().strip()
    return text if text.isdigit() else "unknown"


@contextlib.contextmanager
def output_lock(output: str | os.PathLike, what: str = "--out") -> Iterator[Path]:
    """Hold the lock on `output` for the block; refuse at once, naming the holder's pid, when another process
    has it. The lock goes with the process (a killed run never leaves a stale lock); the small lock file stays,
    since unlinking it would let a third process lock a fresh file while a second still holds the old one."""
    import fcntl

    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    # "a+" so that opening never truncates the holder's pid before we know we own the lock.
    with open(path, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(f"{what} {output} is being written by another pcclip run (pid {_holder(fh)}); "
                                  "wait for it to finish, or choose another output") from None
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            note_output(output)
            yield path
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def main_process() -> bool:
    """True outside distributed runs and on rank 0: the one process of a torchrun job that takes locks."""
    return os.environ.get("RANK", "0") == "0"


def holds_output_lock(param: str = "out", what: str = "--out"):
    """Decorate a library function so that it runs holding the lock on its argument `param` (when given)."""
    import functools
    import inspect

    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            output = signature.bind(*args, **kwargs).arguments.get(param)
            if output is None or not main_process():
                return fn(*args, **kwargs)
            with output_lock(output, what):
                return fn(*args, **kwargs)

        return wrapper

    return decorate
