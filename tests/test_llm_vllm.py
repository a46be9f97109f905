"""The vllm backend: `--llm vllm:MODEL` resolves to it, and without vLLM installed it is one clean error."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import assert_clean_error
from pcclip_cli.llm.registry import list_llms, resolve

no_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")


def test_vllm_names_resolve_to_the_backend():
    assert resolve("vllm:meta-llama/Llama-2-13b-chat-hf") == ("vllm:meta-llama/Llama-2-13b-chat-hf", "vllm",
                                                             "meta-llama/Llama-2-13b-chat-hf")
    assert any(row["backend"] == "vllm" for row in list_llms())


@no_vllm
def test_generate_without_vllm_is_one_error_line(run_pcclip, world, tmp_path):
    out = tmp_path / "pairs.jsonl"
    res = run_pcclip("generate", "--llm", "vllm:org/model", "--captions", world / "captions.jsonl", "--out", out,
                     "--pairs", "2")
    assert_clean_error(res, "vllm", "pip install vllm")
    assert not out.exists()


def test_bad_vllm_option_is_refused_before_loading():
    from pcclip_cli.core.errors import PcclipError
    from pcclip_cli.llm.vllm_backend import VLLMOptions

    with pytest.raises(PcclipError, match="dtype"):
        VLLMOptions(dtype="int3")
