"""User-facing errors: raised by the library, shown by the CLI as one `error:` line with exit code 1."""

from __future__ import annotations


class PcclipError(Exception):
    """A problem with the user's input or environment, explained in one line with a way to fix it."""

    def __init__(self, message: str):
        # Collapse newlines: the CLI promises exactly one line.
        super().__init__(" ".join(str(message).split()))


class UnknownModelError(PcclipError):
    """A model SPEC or LLM name that the registries cannot resolve."""


class DataError(PcclipError):
    """A missing, unreadable or malformed input file."""


class WriteError(PcclipError):
    """The file system refused a write or a read: read-only, full, no permission. Names the path and the cause."""


class CheckpointError(PcclipError):
    """A checkpoint directory with missing, mismatched or unsafe files."""


def short_list(names, limit: int = 12) -> str:
    """Render a list of valid choices for an error message, trimmed to `limit` entries."""
    names = list(names)
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more; see `pcclip models`)"
    return shown


# What to do about the file-system errors people meet; other errnos are reported with the system's own words.
_OS_HINTS = {
    "EROFS": "the file system is read-only; choose an output on a writable disk",
    "ENOSPC": "the disk is full; free some space or choose an output on another disk",
    "EDQUOT": "the disk quota is exhausted; free some space or choose an output on another disk",
    "EACCES": "permission denied; check the folder's permissions or choose another output",
    "EPERM": "operation not permitted; check the folder's permissions or choose another output",
    "EFBIG": "the file is too large for this file system; choose an output on another disk",
    "EIO": "an I/O error from the disk; check the disk, or choose an output on another one",
}


def os_error_message(exc: BaseException, path=None) -> str:
    """One line for an OSError (or a library's wrapped one): the path, the cause and what to do.

    `path` is used when the error itself names none (a write() that meets a full disk names no file)."""
    import errno as errno_mod

    code = getattr(exc, "errno", None)
    name = errno_mod.errorcode.get(code, "") if isinstance(code, int) else ""
    text = str(exc)
    if not name:
        # safetensors and sqlite wrap the OS error in their own exception; recover the cause from the text.
        lowered = text.lower()
        for key, words in (("ENOSPC", ("no space", "disk is full", "storagefull", "code: 28")),
                           ("EROFS", ("read-only", "readonly", "code: 30")),
                           ("EACCES", ("permission denied", "code: 13"))):
            if any(w in lowered for w in words):
                name = key
                break
    where = getattr(exc, "filename", None) or path
    cause = getattr(exc, "strerror", None) or text
    hint = _OS_HINTS.get(name)
    line = f"{where}: {cause}" if where else str(cause)
    return f"{line}; {hint}" if hint else line
