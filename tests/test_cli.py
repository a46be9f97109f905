"""The CLI's global behaviour: listing, fast start, JSON on stdout, one-line errors, usage errors."""

import os
import subprocess
import sys

from conftest import assert_clean_error


def test_help_lists_built_commands(cli):
    result = cli("--help")
    assert result.code == 0
    for name in ("models", "data"):
        assert name in result.stdout


def test_help_imports_nothing_heavy():
    code = ("import sys; from pcclip_cli.cli.main import app; "
            "heavy = [m for m in ('torch', 'open_clip', 'numpy', 'faiss', 'transformers', 'llama_cpp', 'PIL') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing the CLI pulled in: {out}"


def test_version(cli):
    from pcclip_cli import __version__

    result = cli("--version")
    assert result.code == 0 and result.stdout.strip() == __version__


def test_usage_error_exits_2(cli):
    result = cli("data", "shapes", "--images", "notanumber", "/tmp/x")
    assert result.code == 2


def test_unknown_device_is_usage_error(cli):
    assert cli("--device", "tpu", "models").code == 2


def test_user_error_is_one_line_exit_1_in_a_real_process(run_pcclip, tmp_path):
    result = run_pcclip("data", "shapes", tmp_path / "w", "--images", "1")
    assert_clean_error(result, "--images")
    assert not (tmp_path / "w").exists()


def test_cuda_requested_without_gpu_is_a_clean_error(run_pcclip):
    import torch

    if torch.cuda.is_available():
        return
    result = run_pcclip("--device", "cuda", "models", "--json", env={"PCCLIP_DEVICE": ""})
    # `models` does not load a model, so it must succeed; loading one must fail cleanly.
    assert result.code == 0
    from pcclip_cli.core.device import resolve_device
    from pcclip_cli.core.errors import PcclipError

    try:
        resolve_device("cuda")
    except PcclipError as exc:
        assert "no CUDA device" in str(exc)
    else:
        raise AssertionError("cuda without a GPU must raise")


def _two_images(world):
    return [str(p) for p in sorted((world / "images").rglob("*.png"))[:2]]


def test_device_flag_reaches_the_library_as_an_argument(cli, world, tmp_path, monkeypatch):
    """`--device cpu` is handed to the library, not left in the environment: with $PCCLIP_DEVICE naming a device
    the resolver refuses, any model loaded from the variable instead of the flag would fail the command."""
    import torch

    monkeypatch.setenv("PCCLIP_DEVICE", "tpu")
    cuda_before = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    ranked = cli("--device", "cpu", "rank", *_two_images(world), "larger", "--model", "pcclip-micro", "--json")
    assert ranked.code == 0, ranked.stderr
    assert ranked.json()["answer"] in ("first", "second")
    indexed = cli("--device", "cpu", "index", world / "images", "--out", tmp_path / "idx", "--model", "pcclip-micro",
                  "--index-type", "flat", "--json")
    assert indexed.code == 0, indexed.stderr
    assert indexed.json()["backend"] == "cpu"
    assert os.environ["PCCLIP_DEVICE"] == "tpu"  # the CLI wrote nothing back
    if torch.cuda.is_available():
        assert torch.cuda.memory_allocated() == cuda_before  # nothing went to the GPU
    # Without the flag the same variable is the CLI's own --device default, checked as an option: a usage error.
    assert cli("rank", *_two_images(world), "larger", "--model", "pcclip-micro").code == 2

    monkeypatch.delenv("PCCLIP_DEVICE")
    again = cli("--device", "cpu", "rank", *_two_images(world), "larger", "--model", "pcclip-micro", "--json")
    assert again.code == 0, again.stderr
    assert "PCCLIP_DEVICE" not in os.environ


def test_cuda_flag_without_a_gpu_is_one_error_line(cli, world):
    import torch

    if torch.cuda.is_available():
        return
    result = cli("--device", "cuda", "rank", *_two_images(world), "larger", "--model", "pcclip-micro")
    assert_clean_error(result, "no CUDA device")
