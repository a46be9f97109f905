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
    "EROFS": "choose an output on a writable disk",
    "ENOSPC": "free some space or choose an output on another disk",
    "EDQUOT": "free some space or choose an output on another disk",
    "EACCES": "check the folder's permissions or choose another output",
    "EPERM": "check the folder's permissions or choose another output",
    "EFBIG": "choose an output on another disk",
    "EIO": "check the disk, or choose an output on another one",
}


_last_output: list = [None]


def note_output(path) -> None:
    """Remember the output the running command writes, for file-system errors that name no file (sqlite's
    "database or disk is full", a write() on a full disk); None forgets it."""
    _last_output[0] = path


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
    where = getattr(exc, "filename", None) or path or _last_output[0]
    cause = getattr(exc, "strerror", None) or text
    hint = _OS_HINTS.get(name)
    line = f"{where}: {cause}" if where else str(cause)
    return f"{line}; {hint}" if hint else line
