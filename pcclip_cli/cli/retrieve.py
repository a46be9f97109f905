"""`pcclip retrieve`: the images of an index that best match an attribute, a text or an image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pcclip_cli.core.errors import PcclipError

from .console import (
    JsonOption,
    QueryTemplatesOption,
    check_attribute_word,
    chosen_device,
    data_lines,
    data_on_terminal,
    emit_json,
    err,
    info,
    warn,
)

# Shared by `rank` and `retrieve`: how an attribute word becomes text queries (data.attributes).


def command(
    ctx: typer.Context,
    index: Annotated[Path | None, typer.Option(
        "--index", help="Index directory written by `pcclip index` [default: the shapes world's test images "
                        "under shapes-clip, built on first use].")] = None,
    attribute: Annotated[str | None, typer.Option(help="Rank by an attribute word ('bluer', 'large') or a "
                                                       "comparative sentence, as `rank` does.")] = None,
    text: Annotated[str | None, typer.Option(help="Plain text-to-image retrieval.")] = None,
    image: Annotated[Path | None, typer.Option(help="Image-to-image retrieval.")] = None,
    than: Annotated[Path | None, typer.Option(help="With --attribute: only images with more of it than this one.")]
    = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Number of results.")] = 10,
    model: Annotated[str | None, typer.Option(help="Text encoder to query with [default: the index's model]; "
                                                   "must share the index's image tower.")] = None,
    query_templates: QueryTemplatesOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse an attribute word the vocabulary does not "
                                                          "know (default: warn and name the nearest one).")]
    = False,
    json_out: JsonOption = False,
):
    """Search an index: top-k images with rank, score, path and metadata."""
    from pcclip_cli.retrieval import Query, QueryKind, retrieve

    given = [(kind, v) for kind, v in ((QueryKind.attribute, attribute), (QueryKind.text, text),
                                        (QueryKind.image, image)) if v is not None]
    if len(given) != 1:
        raise PcclipError("give exactly one query: --attribute WORD, --text TEXT or --image PATH")
    kind, value = given[0]
    if kind == QueryKind.attribute:
        check_attribute_word(value, strict)
    query = Query(kind, str(value), than=str(than) if than is not None else None, templates=query_templates)
    result = retrieve(index, query, k=k, model=model, device=chosen_device(ctx), notify=info, warn=warn)
    if json_out:
        emit_json(result)
        return
    from rich.table import Table

    q = result["query"]
    title = f"{q['kind']} {q['value']!r}"
    if q.get("sentences") and q["sentences"] != [q["value"]]:
        n = len(q["sentences"])
        title += f" -> {q['sentence']!r}" + (f" and {n - 1} more phrasings (averaged)" if n > 1 else "")
    if q.get("than"):
        title += f", more than {q['than']}"
    data_lines([[str(hit["rank"]), f"{hit['score']:.4f}", hit["path"], _short_meta(hit["meta"])]
                for hit in result["results"]])
    if data_on_terminal() or not result["results"]:
        err.print(f"{title} ({result['count']} images, {result['index_type']})")
        if not result["results"]:
            err.print("no images matched" + (" (none has more of it than the reference)" if q.get("than") else ""))
        return
    table = Table(title=f"{title} ({result['count']} images, {result['index_type']})", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("path", overflow="fold")  # a folded path can still be copied; an elided one cannot
    table.add_column("metadata")
    for hit in result["results"]:
        meta = _short_meta(hit["meta"])
        table.add_row(str(hit["rank"]), f"{hit['score']:.4f}", _short_path(hit["path"]), meta)
    err.print(table)
    if not result["results"]:
        err.print("no images matched" + (" (none has more of it than the reference)" if q.get("than") else ""))


def _short_path(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _short_meta(meta: dict) -> str:
    if meta.get("caption"):
        return str(meta["caption"])
    attrs = meta.get("attributes") if isinstance(meta.get("attributes"), dict) else meta
    return ", ".join(f"{k}={v}" for k, v in attrs.items() if not isinstance(v, list | dict) and k != "id")
