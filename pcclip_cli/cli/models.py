"""`pcclip models`: every CLIP model SPEC (and LLM name) the registries accept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .console import JsonOption, data_lines, data_on_terminal, emit_json, err


def command(
    search: Annotated[list[Path] | None, typer.Option(help="Also look for checkpoints under this folder.")] = None,
    all_pretrained: Annotated[bool, typer.Option("--all", help="List every open_clip pretrained tag.")] = False,
    json_out: JsonOption = False,
):
    """List built-in architectures, the shapes model, pretrained tags, local checkpoints and LLM names."""
    from pcclip_cli.llm.registry import list_llms
    from pcclip_cli.models import list_models

    listing = list_models(search=list(search or []) + [Path.cwd()], all_pretrained=all_pretrained)
    listing["llms"] = list_llms()
    if json_out:
        emit_json(listing)
        return
    rows = _rows(listing, all_pretrained)
    # The names are data: one tab-separated line each on stdout (SPEC or LLM name, kind, what it is).
    data_lines(rows)
    if not all_pretrained:
        err.print("more open_clip tags: pcclip models --all; any hf-hub:org/repo is accepted too")
    if data_on_terminal():
        return
    from rich.table import Table

    table = Table(title="CLIP models (--model SPEC) and LLMs (--llm NAME)", title_justify="left")
    for col in ("name", "kind", "what"):
        table.add_column(col, overflow="fold")  # a folded name can still be copied; an elided one cannot
    for row in rows:
        table.add_row(*row)
    err.print(table)


def _rows(listing: dict, all_pretrained: bool) -> list[list[str]]:
    rows = []
    for shapes in listing["shapes"]:
        state = "cached" if shapes["cached"] else "trained on first use"
        default = "the default; " if shapes["name"] == listing["default"] else ""
        rows.append([shapes["name"], "shapes", f"{default}{shapes['recipe']}; {state}"])
    for b in listing["builtin"]:
        text = f"with the sentence encoder {b['text_tower']} as text tower" if b.get("text_tower") else "random init"
        rows.append([b["name"], "builtin", f"{b['image_size']} px, {b['layers']} image layers, {text}"])
    for p in listing["pretrained"]:
        rows.append([p, "pretrained", "the paper's model (needs hub access)" if p == listing["paper"]
                     else "open_clip pretrained (needs hub access)"])
    for c in listing["checkpoints"]:
        rows.append([c["path"], "checkpoint", f"{c['arch']}, base {c['base']}, scope {c['scope']}"])
    for row in listing.get("llms") or []:
        rows.append([row["name"], "llm", f"{row['backend']}" + (f": {row['target']}" if row.get("target") else "")])
    return rows
