"""One-line notices for people (first-use training, built-on-first-use caches), routed wherever the caller says."""

from __future__ import annotations

from collections.abc import Callable

_notify: Callable[[str], None] | None = None  # the CLI points this at stderr; library users may too


def set_notifier(fn: Callable[[str], None] | None) -> None:
    """Route one-line notices to `fn(message)`; None silences them."""
    global _notify
    _notify = fn


def notify(message: str) -> None:
    if _notify:
        _notify(message)
