"""`pcclip models`: every CLIP model SPEC (and LLM name) the registries accept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .console import JsonOption, emit_json, err


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
    from rich.table import Table

    table = Table(title="CLIP models (--model SPEC)", title_justify="left")
    table.add_column("SPEC")
    table.add_column("what")
    for shapes in listing["shapes"]:
        state = "cached" if shapes["cached"] else "trained on first use"
        name = f"[bold]{shapes['name']}[/bold]" if shapes["name"] == listing["default"] else shapes["name"]
        table.add_row(name, f"{shapes['recipe']}; {state}")
    for b in listing["builtin"]:
        text = f"with the sentence encoder {b['text_tower']} as text tower" if b.get("text_tower") else "random init"
        table.add_row(b["name"], f"built-in architecture, {b['image_size']} px, {b['layers']} image layers, {text}")
    for p in listing["pretrained"]:
        table.add_row(p, "paper's model (needs hub access)" if p == listing["paper"] else "open_clip pretrained")
    if not all_pretrained:
        table.add_row("...", "more open_clip tags: pcclip models --all; any hf-hub:org/repo")
    for c in listing["checkpoints"]:
        table.add_row(c["path"], f"checkpoint: {c['arch']}, base {c['base']}, scope {c['scope']}")
    err.print(table)
    if listing.get("llms"):
        llms = Table(title="LLMs (--llm NAME)", title_justify="left")
        llms.add_column("name")
        llms.add_column("backend")
        llms.add_column("target")
        for row in listing["llms"]:
            llms.add_row(row["name"], row["backend"], row.get("target", ""))
        err.print(llms)
