"""Shared fixtures: an isolated PCCLIP_HOME, a small shapes world, tiny real CLIP models, CLI runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# No test may reach a model hub; with these set, an accidental lookup fails at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PCCLIP_DEVICE", "cpu")

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with `make test-slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def pcclip_home(tmp_path_factory):
    """Every test session gets its own cache, so tests never see a developer's models or embeddings."""
    home = tmp_path_factory.mktemp("pcclip-home")
    os.environ["PCCLIP_HOME"] = str(home)
    return home


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from a second thread, and on a shared CPU two spinning OpenMP threads can make a
    step 10x slower; the thread count is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """A 60-image shapes world shared by the session (read-only: copy it to modify)."""
    from pcclip_cli.data.shapes import WorldConfig, build_world

    out = tmp_path_factory.mktemp("worlds") / "w60"
    build_world(out, WorldConfig(images=60, seed=0))
    return out


@pytest.fixture(scope="session")
def micro_clip():
    """The smallest built-in architecture, randomly initialised (seeded): a real OpenCLIP model."""
    from pcclip_cli.models import load_clip

    return load_clip("pcclip-micro", "cpu")


class CliResult:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self):
        return json.loads(self.stdout)

    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith("error:")]


@pytest.fixture
def cli():
    """Run `pcclip ARGS` in-process through Click's runner; stdout and stderr are kept apart."""
    from typer.testing import CliRunner

    from pcclip_cli.cli.main import app

    def run(*args, input: str | None = None) -> CliResult:
        result = CliRunner().invoke(app, [str(a) for a in args], input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def run_pcclip():
    """Run the real `pcclip` executable in a subprocess (for exit codes, tracebacks, kills)."""

    def run(*args, timeout: float = 600, env: dict | None = None, **kw) -> CliResult:
        proc = subprocess.run([sys.executable, "-m", "pcclip_cli.cli.main", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, **(env or {})}, **kw)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


def assert_clean_error(result: CliResult, *fragments: str) -> None:
    """Exit 1, exactly one `error:` line (naming the fragments), no traceback, nothing on stdout."""
    assert result.code == 1, (result.code, result.stdout, result.stderr)
    lines = result.error_lines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


@pytest.fixture(scope="session")
def shapes_clip(world):
    """A small `shapes-clip` (pcclip-micro trained from random init on the `world` fixture's captions, a few
    seconds), installed in this session's PCCLIP_HOME so tests can pass `--model shapes-clip` cheaply."""
    from pcclip_cli.models import load_clip, shapes_model_dir
    from pcclip_cli.training.shapes_recipe import ShapesRecipe, train_shapes_base

    train_shapes_base(shapes_model_dir(), recipe=ShapesRecipe.for_tests(), world_dir=world)
    return load_clip("shapes-clip", "cpu")
