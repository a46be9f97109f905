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

from .errors import DataError, WriteError, note_output, os_error_message


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask can only set and return)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode(path: Path) -> int:
    """The mode a plain `open(path, "w")` would give: the existing file's, else 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def is_storage_error(exc: BaseException) -> bool:
    """An OSError, or a library's wrapped one (safetensors' SafetensorError, sqlite's OperationalError)."""
    if isinstance(exc, OSError):
        return True
    name = type(exc).__name__
    return name in ("SafetensorError", "OperationalError", "DatabaseError") and any(
        w in str(exc).lower() for w in ("os {", "ioerror", "disk", "read-only", "readonly", "no space",
                                        "permission", "unable to open"))


def current_umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed over `path`, on failure removed.

    A killed process therefore leaves either the old file or the new one, never a torn one. The file gets the
    permissions a plain write would (mkstemp's are owner-only), and a refusal of the file system (read-only,
    full, no permission) becomes a WriteError naming `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise WriteError(os_error_message(exc, path)) from None
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600; the output gets what open() would give
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode(path))
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if is_storage_error(exc) and not isinstance(exc, BrokenPipeError):
            # The temporary name means nothing to the user: name the output instead.
            filename = getattr(exc, "filename", None)
            if filename and str(filename) == str(tmp_path):
                exc.filename = None
            raise WriteError(os_error_message(exc, path)) from None
        raise


def check_writable(path: str | os.PathLike, what: str = "--out") -> None:
    """Refuse, before long work starts, an output whose folder cannot take a new file (read-only, no
    permission). Probes with an unnamed temporary file in the nearest existing folder, so nothing is left."""
    path = Path(path).expanduser()
    note_output(path)
    probe = path if path.is_dir() else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise DataError(f"{what} {path}: {probe} is not a folder; choose another output")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        exc.filename = None
        raise WriteError(f"{what} " + os_error_message(exc, path)) from None


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
