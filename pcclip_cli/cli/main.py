"""The root `pcclip` app: global options, error handling, and the table of subcommands."""

from __future__ import annotations

import enum
import importlib
import os
import sys
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import PcclipError


class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class PcclipGroup(TyperGroup):
    """Turns library errors into one `error:` line and exit code 1, for the CLI and CliRunner alike."""

    def list_commands(self, ctx):  # keep the order of COMMANDS, not alphabetical
        return list(self.commands)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PcclipError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted; re-run the same command to resume where it stopped")
        except BrokenPipeError:
            sys.exit(0)


def _fail(message: str):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


app = typer.Typer(
    cls=PcclipGroup,
    name="pcclip",
    help="PC-CLIP: finetune CLIP so that g(I1) - g(I2) aligns with f(T12), and evaluate what it learns.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        click.echo(__version__)
        raise typer.Exit()


@app.callback()
def root(
    device: Annotated[
        Device,
        typer.Option(help="Where models run; auto means CUDA when present.", envvar="PCCLIP_DEVICE"),
    ] = Device.auto,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
):
    """PC-CLIP toolkit."""
    # Library code reads the device choice from the environment so scripts and commands agree.
    os.environ["PCCLIP_DEVICE"] = device.value
    from ..models import set_notifier
    from .console import info

    set_notifier(info)


# name -> "module:function". Each command lives in its own small module, imported when registered; the
# modules import only Typer and light library code, so `pcclip --help` stays instant.
COMMANDS: dict[str, str] = {
    "generate": "generate",
    "filter": "filter",
    "audit": "audit",
    "train": "train",
    "rank": "rank",
    "classify": "classify",
    "distance": "distance",
    "eval": "evaluate",
    "index": "index",
    "retrieve": "retrieve",
    "report": "report",
    "demo": "demo",
    "models": "models",
    "data": "data",
}


def _register() -> None:
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module_name}":
                raise
            continue  # not built yet: not listed
        if isinstance(getattr(module, "app", None), typer.Typer):
            app.add_typer(module.app, name=name)
        else:
            app.command(name)(module.command)


_register()


def main() -> None:
    app(prog_name="pcclip")


if __name__ == "__main__":
    main()
