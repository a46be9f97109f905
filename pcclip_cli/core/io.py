"""Safe file I/O shared by every command: atomic writes, JSONL reading with line numbers, hashing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DataError


def current_umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed over `path`, on failure removed.

    A killed process therefore leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600; the output gets what open() would give
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, records) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str | os.PathLike, *, what: str = "file") -> Iterator[tuple[int, dict]]:
    """Yield (line_number, record) for each non-blank line; a bad line raises DataError naming it.

    A final line without a newline is still read: it may be the last record of a finished file. Callers
    that append (generate) repair a torn tail themselves before appending.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} not found: {path}")
    if path.is_dir():
        raise DataError(f"{what} is a directory, expected a JSONL file: {path}")
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                # Some tools start UTF-8 files with a byte-order mark; it is not part of the first record.
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{lineno}: not valid UTF-8; re-encode the file as UTF-8") from None
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg}); fix or remove that line") from None
            except RecursionError:
                raise DataError(f"{path}:{lineno}: JSON nested too deeply to read; fix or remove that line") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
            yield lineno, rec


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def inside(base: Path, relative: str) -> Path:
    """Resolve `relative` under `base`, refusing paths that escape it (absolute paths, `..`)."""
    base = base.resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise DataError(f"path {relative!r} escapes its directory {base}; use a path relative to it")
    return target


# Globals a plain-data pickle (dicts, lists, strings, numbers, numpy arrays) may reference; anything else, and
# so any code a crafted file would run, is refused.
_PLAIN_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


def load_plain_pickle(path: str | os.PathLike, encoding: str = "latin1"):
    """Read a third-party pickle that should hold only plain data (e.g. CIFAR's python files), refusing any
    other global, so a crafted file cannot run code."""
    import pickle

    class PlainDataUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in _PLAIN_PICKLE_GLOBALS:
                return super().find_class(module, name)
            raise DataError(f"{path} is not a plain-data pickle (it references {module}.{name}); refusing to load it")

    with open(path, "rb") as fh:
        try:
            return PlainDataUnpickler(fh, encoding=encoding).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise DataError(f"{path} is not a readable pickle ({exc})") from None
