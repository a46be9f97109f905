"""A built wheel runs on its own: package data (paper task files, prompts, model configs) ships inside it.

Builds the wheel without network (--no-build-isolation: setuptools comes from the test's interpreter), installs it
without dependencies into a fresh venv, and runs the installed `pcclip` from a temporary directory. The venv sees
the test interpreter's packages (torch and the rest) through a .pth line added after the install; a directory named
in a .pth file has its own .pth files ignored, so an editable pcclip there stays invisible and pcclip_cli comes
from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _clean_env() -> dict:
    """The caller's environment without what would put the source tree on the path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    wheels = tmp / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(REPO)], capture_output=True, text=True, cwd=tmp, timeout=180, env=_clean_env())
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("pcclip*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # The test interpreter's pip installs into the new venv (--python), so the venv needs no pip of its own.
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                           "--no-index", "-q", str(wheel)], capture_output=True, text=True, cwd=tmp, timeout=180, env=_clean_env())
    assert inst.returncode == 0, inst.stderr[-2000:]
    (site_dir,) = (env_dir / "lib").glob("python*/site-packages")
    (site_dir / "outer-site.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    return env_dir


def _run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = _clean_env()
    env["PATH"] = f"{env_dir / 'bin'}:{env.get('PATH', '')}"
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_wheel_installs_the_package_and_its_data(installed, tmp_path):
    python = str(installed / "bin" / "python")
    probe = _run(installed, python, "-c",
                 "import pcclip_cli, pathlib; from pcclip_cli.evaluation.suite import PAPER_TASKS_DIR as d; "
                 "print(pcclip_cli.__file__); print(sorted(p.name for p in d.glob('*.toml')))", cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    where, tasks = probe.stdout.splitlines()
    assert Path(where).resolve().is_relative_to(installed.resolve()), where
    assert not Path(where).resolve().is_relative_to(REPO), where
    assert "cifar100-size.toml" in tasks and "cub-differences.toml" in tasks, tasks


def test_installed_pcclip_runs_the_paper_suite_from_packaged_tasks(installed, tmp_path):
    pcclip = str(installed / "bin" / "pcclip")
    helped = _run(installed, pcclip, "eval", "--suite", "paper", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "--data-root" in helped.stdout
    # No dataset under this root: the suite reads every packaged task file, finds none runnable, and says which.
    ran = _run(installed, pcclip, "eval", "--suite", "paper", "--data-root", str(tmp_path / "no-data"),
               cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    line = ran.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and "cifar100-size" in line and "cub-differences" in line, ran.stderr
