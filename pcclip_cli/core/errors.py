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


class CheckpointError(PcclipError):
    """A checkpoint directory with missing, mismatched or unsafe files."""


def short_list(names, limit: int = 12) -> str:
    """Render a list of valid choices for an error message, trimmed to `limit` entries."""
    names = list(names)
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more; see `pcclip models`)"
    return shown
