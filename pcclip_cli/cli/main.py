"""The root `pcclip` app: global options, error handling, and the table of subcommands."""

from __future__ import annotations

import enum
import importlib
import math
import sys
import typing
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from pcclip_cli import __version__
from pcclip_cli.core.errors import PcclipError


class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def _is_float_option(param) -> bool:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return annotation is float or float in typing.get_args(annotation)


def _finite_floats(command) -> object:
    """Give every float option of `command` (and of its subcommands) a check that refuses NaN and ±inf: no
    setting of pcclip means anything at either, and a NaN learning rate would only fail much later."""
    for param in command.params:
        if not _is_float_option(param) or getattr(param, "_finite_checked", False):
            continue
        original = param.callback

        def check(ctx, p, value, _original=original):
            values = value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise PcclipError(f"{p.opts[0] if p.opts else p.name} must be a finite number, got {value}")
            return _original(ctx, p, value) if _original else value

        param.callback = check
        param._finite_checked = True
    for sub in getattr(command, "commands", {}).values():
        _finite_floats(sub)
    return command


class PcclipGroup(TyperGroup):
    """Turns library errors into one `error:` line and exit code 1, for the CLI and CliRunner alike."""

    def list_commands(self, ctx):  # keep the order of COMMANDS, not alphabetical
        return list(self.commands)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        return _finite_floats(command) if command is not None else None

    def invoke(self, ctx):
        from pcclip_cli.data.records import set_allow_outside

        try:
            return super().invoke(ctx)
        except PcclipError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted; re-run the same command to resume where it stopped")
        except BrokenPipeError:
            sys.exit(0)
        except Exception as exc:
            # The file system said no (read-only, full disk, no permission), directly or through sqlite or
            # safetensors: one line naming the path and the cause. Anything else is a bug and keeps its traceback.
            from pcclip_cli.core.errors import os_error_message
            from pcclip_cli.core.io import is_storage_error

            if not is_storage_error(exc):
                raise
            _fail(os_error_message(exc))
        finally:
            set_allow_outside(None)  # the flag is for this command only (in-process callers run many)


def _fail(message: str):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


app = typer.Typer(
    cls=PcclipGroup,
    name="pcclip",
    help="PC-CLIP: finetune CLIP so that g(I1) - g(I2) aligns with f(T12), and evaluate what it learns.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain Click help: Rich's option table cuts long flag names at 80 columns (`--mse-raw-differ…`).
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        click.echo(__version__)
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    device: Annotated[
        Device,
        typer.Option(help="Where models run; auto means CUDA when present.", envvar="PCCLIP_DEVICE"),
    ] = Device.auto,
    allow_outside: Annotated[
        bool, typer.Option("--allow-outside/--inside-only", envvar="PCCLIP_ALLOW_OUTSIDE",
                           help="Whether manifests may name images outside their own folder (by ../, an absolute "
                                "path or a symlink).")
    ] = True,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
):
    """PC-CLIP toolkit."""
    from .console import CliSettings

    # Each command passes the device to its library call (console.chosen_device(ctx)); nothing else sees it.
    ctx.obj = CliSettings(device=device.value)
    from pcclip_cli.data.records import set_allow_outside

    set_allow_outside(allow_outside)
    from pcclip_cli.core.errors import note_output
    from pcclip_cli.core.notices import set_notifier

    note_output(None)  # in-process callers (tests) run many commands: forget the last one's output

    from .console import info, warn

    set_notifier(info)
    _route_warnings(warn)


def _route_warnings(warn) -> None:
    """Libraries' warnings (Pillow on palette images with transparency, ...) become pcclip's own one-line
    `warning:` notes instead of Python's two-line `file:line: UserWarning` blocks; shown as often as Python's filters say (once per place, by default)."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        warn(f"{text} ({category.__name__} from {Path(filename).parent.name}/{Path(filename).name})")

    warnings.showwarning = show


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
    "align": "align",
    "analyse-descriptions": "analyse",
    "demo": "demo",
    "models": "models",
    "data": "data",
}


def _register() -> None:
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__package__}.{module_name}")
        if isinstance(getattr(module, "app", None), typer.Typer):
            app.add_typer(module.app, name=name)
        else:
            app.command(name)(module.command)


_register()


def main() -> None:
    app(prog_name="pcclip")


if __name__ == "__main__":
    main()
