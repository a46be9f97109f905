"""The vLLM backend (`--llm vllm:MODEL`): vLLM's offline `LLM` engine on GPUs, batched, greedy or sampled.

The same prompts and records as the other backends: the rendered prompt is completed as it is (or wrapped in
the model's chat template with chat=True), cut at the prompt's stop strings, and a sampled item draws from a
seed derived from the run's seed and the item's key, so a rerun of one item gives the same text. vLLM
schedules the whole batch itself (continuous batching), so large `--batch-size` values are what it wants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pcclip_cli.core.errors import DataError, PcclipError

from .base import LLM, Completion, Params, Request, cut_at_stop, item_seed, split_answer_cue

_ENGINES: dict[tuple, object] = {}  # one engine per (model, options) per process: loading takes minutes


@dataclass
class VLLMOptions:
    dtype: str | None = None  # auto | bfloat16 | float16 | float32; default: vLLM's auto
    chat: bool = False
    tensor_parallel: int | None = None  # GPUs to split the model over; default: all visible, for 13B+ models
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None

    def __post_init__(self):
        if self.dtype is not None:
            self.dtype = str(getattr(self.dtype, "value", self.dtype))
        if self.dtype is not None and self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise PcclipError(f"dtype must be auto, bfloat16, float16 or float32, got {self.dtype!r}")
        if self.tensor_parallel is not None and self.tensor_parallel < 1:
            raise PcclipError(f"tensor_parallel must be at least 1, got {self.tensor_parallel}")


def import_vllm():
    try:
        import vllm
    except ImportError:
        raise DataError("the vllm backend needs vLLM on a CUDA machine: pip install vllm (or use "
                        "--llm transformers:MODEL, or openai:MODEL with --base-url for a vLLM server)") from None
    return vllm


class VLLMLLM(LLM):
    """vLLM's offline engine on CUDA GPUs (pip install vllm)."""

    backend = "vllm"
    batched = True
    options_class = VLLMOptions
    cli_flags = {"--dtype": "dtype", "--chat": "chat"}
    text_options = ("dtype", "chat")

    def __init__(self, name: str, target: str, **opts):
        super().__init__(name, target, **opts)
        vllm = import_vllm()
        key = (target, self.options.dtype, self.options.tensor_parallel, self.options.max_model_len,
               self.options.gpu_memory_utilization)
        if key not in _ENGINES:
            kw = {"model": target, "dtype": self.options.dtype or "auto",
                  "tensor_parallel_size": self.options.tensor_parallel or _visible_gpus()}
            if self.options.max_model_len:
                kw["max_model_len"] = self.options.max_model_len
            if self.options.gpu_memory_utilization:
                kw["gpu_memory_utilization"] = self.options.gpu_memory_utilization
            try:
                _ENGINES[key] = vllm.LLM(**kw)
            except (OSError, ValueError, RuntimeError) as exc:
                raise DataError(f"vLLM could not load {target!r}: {str(exc).splitlines()[0][:200]}") from None
        self.engine = _ENGINES[key]

    def _prompt(self, text: str) -> str:
        if not self.options.chat:
            return text
        question, cue = split_answer_cue(text)
        tok = self.engine.get_tokenizer()
        return tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                       add_generation_prompt=True) + cue

    def sampling(self, request: Request, params: Params):
        from vllm import SamplingParams

        seed = item_seed(params.seed, request.key) if params.temperature > 0 else None
        return SamplingParams(max_tokens=params.max_tokens, temperature=params.temperature, stop=list(params.stop),
                              seed=seed)

    def complete(self, requests: list[Request], params: Params) -> list[Completion]:
        outputs = self.engine.generate([self._prompt(r.prompt) for r in requests],
                                       [self.sampling(r, params) for r in requests], use_tqdm=False)
        results = []
        for out in outputs:
            o = out.outputs[0]
            text, cut = cut_at_stop(o.text, params.stop)
            results.append(Completion(text, len(o.token_ids),
                                      "stop" if cut or o.finish_reason == "stop" else "length"))
        return results


def _visible_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return max(1, len([d for d in visible.split(",") if d.strip()]))
    try:
        import torch

        return max(1, torch.cuda.device_count())
    except ImportError:
        return 1
