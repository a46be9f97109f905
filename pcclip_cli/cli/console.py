"""People's output (stderr, Rich) and data output (stdout, JSON) for every command."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console

# stderr for people; stdout is reserved for data so that `--json` output can be piped.
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DEFAULT_MODEL = "shapes-clip"
ModelOption = Annotated[str, typer.Option("--model", "-m", help="CLIP model SPEC (see `pcclip models`).")]
QueryTemplatesOption = Annotated[str | None, typer.Option(
    "--query-templates", metavar="FILE|NAME",
    help="Templates a bare attribute word is filled into (a prompt ensemble, averaged): a .toml or .txt file, "
         "or a shipped set (default, single-sentence). Each template uses {word} or {cmp}.")]


@dataclass(frozen=True)
class CliSettings:
    """The root command's global options, kept on the Click context (`ctx.obj`) for the subcommands."""

    device: str = "auto"  # --device (or $PCCLIP_DEVICE, read by the option itself)


def chosen_device(ctx: typer.Context) -> str:
    """The global `--device` of the command running in `ctx`, for the `device=` argument of its library call."""
    settings = ctx.find_object(CliSettings)
    return settings.device if settings is not None else CliSettings.device


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_jsonable) + "\n")
    sys.stdout.flush()


def _jsonable(obj: Any):
    import os

    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, set):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def data_lines(rows: list[list[str]]) -> None:
    """Results as plain tab-separated lines on stdout (for `| grep`, `cut` and `$(...)`), uncut."""
    for row in rows:
        sys.stdout.write("\t".join(" ".join(str(cell).split("\t")) for cell in row) + "\n")
    sys.stdout.flush()


def data_on_terminal() -> bool:
    """Whether stdout is the same terminal as stderr: then the data lines are the table, and printing a Rich
    copy of them on stderr would show everything twice."""
    return sys.stdout.isatty()


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}")


def info(message: str) -> None:
    err.print(message)


class ProgressReporter:
    """Adapter from the library's plain `progress(done, total, **fields)` callbacks to a Rich bar."""

    def __init__(self, progress, description: str):
        self._progress = progress
        self._task = progress.add_task(description, total=None, extra="")

    def __call__(self, done: int, total: int | None = None, **fields) -> None:
        extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        self._progress.update(self._task, completed=done, total=total, extra=extra)


@contextmanager
def progress_bar(description: str, enabled: bool = True):
    """A Rich progress bar on stderr with rate and ETA; yields a callback for the library."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not enabled:
        yield lambda *a, **k: None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[extra]}"),
    ]
    # Drawn on the first report only: a command that fails its checks, or finds its work done, draws no
    # empty "0/?" bar.
    state: dict = {}

    def report(done: int, total: int | None = None, **fields) -> None:
        if "reporter" not in state:
            state["progress"] = Progress(*columns, console=err, transient=False)
            state["progress"].start()
            state["reporter"] = ProgressReporter(state["progress"], description)
        state["reporter"](done, total, **fields)

    try:
        yield report
    finally:
        if "progress" in state:
            state["progress"].stop()


def known_attribute_words() -> set[str]:
    """Every attribute word pcclip's shipped tables know: the comparatives `rank` and `retrieve` expand, and the
    vocabulary the audit reads (colours, sizes, shapes and their synonyms)."""
    from pcclip_cli.core.config import load_toml
    from pcclip_cli.core.paths import PROMPTS_DIR

    words: set[str] = set()
    for key, pair in load_toml(PROMPTS_DIR / "attributes.toml").get("comparatives", {}).items():
        words.update([key, *pair])
    for table in load_toml(PROMPTS_DIR / "vocabulary.toml").values():
        if isinstance(table, dict):
            for value, names in table.items():
                words.add(value)
                words.update(n for n in names if isinstance(n, str))
    return {w.lower() for w in words}


def check_attribute_word(attribute: str | None, strict: bool) -> None:
    """A bare word that no table knows is most often a typo (`bleu`): warn naming the nearest known word, or
    refuse with --strict. Sentences (three or more words) and known words pass silently."""
    import difflib

    from pcclip_cli.core.errors import PcclipError

    word = " ".join((attribute or "").split()).lower()
    if not word or len(word.split()) >= 3:
        return
    known = known_attribute_words()
    if word in known or all(w in known or w in ("more", "less") for w in word.split()):
        return
    near = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    message = f"attribute {attribute!r} is not a word pcclip's vocabulary knows{hint}"
    if strict:
        raise PcclipError(message + " (--strict refuses unknown words; drop it to query the word as typed)")
    warn(message + " (queried as typed; --strict refuses unknown words)")
