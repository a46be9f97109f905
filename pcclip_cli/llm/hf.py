"""The `transformers` backend ("LLaMA"): hub ids, local model directories or GGUF files, batched with left padding.

On a GPU the model loads in bfloat16 with `device_map="auto"` (so 13B fits across devices); on CPU in float32.
A `.gguf` target is read through transformers' GGUF support (dequantised), which needs `gguf` and `accelerate`.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.device import resolve_device
from pcclip_cli.core.errors import DataError, PcclipError

from .base import LLM, Completion, Params, Request, cut_at_stop, item_seed, split_answer_cue

_CACHE: dict[tuple, tuple] = {}
_LOCK = threading.Lock()


class Dtype(str, enum.Enum):
    """The weights' type (`--dtype`)."""

    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"


@dataclass(frozen=True)
class TransformersOptions:
    device: str | None = None  # cpu | cuda | auto; None: auto (core.device); get_llm passes the caller's
    dtype: str | None = None  # bfloat16 | float16 | float32; default: bfloat16 on GPU, float32 on CPU
    chat: bool = False  # wrap the prompt in the model's chat template (the paper completes the raw prompt)
    prefix_cache: bool = True  # read the prompt prefix a batch shares once and reuse its KV cache for every row

    def __post_init__(self):
        if self.device not in (None, "cpu", "cuda", "auto"):
            raise PcclipError(f"device must be cpu, cuda or auto, got {self.device!r}")
        if self.dtype is not None and self.dtype not in {d.value for d in Dtype}:
            raise PcclipError(f"dtype must be {', '.join(d.value for d in Dtype)}, got {self.dtype!r}")


def _source(target: str) -> tuple[str, dict]:
    """(from_pretrained location, extra kwargs) for a hub id, a local directory or a .gguf file."""
    path = Path(target).expanduser()
    if target.endswith(".gguf"):
        from .llamacpp import check_gguf

        path = check_gguf(path)
        return str(path.parent), {"gguf_file": path.name}
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise DataError(f"{path} is not a transformers model directory (no config.json)")
        return str(path.resolve()), {}
    if target.count("/") != 1 or target.startswith(("/", ".", "~")):
        raise DataError(f"transformers model not found: {target!r} is neither a local directory nor a hub id "
                        "(org/name)")
    return target, {}


@contextlib.contextmanager
def _quiet_loading():
    """Keep transformers' GGUF conversion quiet on stderr: its bar is a bare tqdm that ignores
    `disable_progress_bar`, and its dtype advice is a warning about kernels this backend does not use (weights are
    dequantised)."""
    from transformers.utils import logging as hf_logging

    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # transformers without GGUF support
        gguf_utils = None
    bar = getattr(gguf_utils, "tqdm", None)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    if bar is not None:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar is not None:
            gguf_utils.tqdm = bar


def _load(target: str, device: str, dtype_name: str | None):
    key = (target, device, dtype_name)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        # Its tqdm bars would interleave with pcclip's own progress bar on stderr.
        hf_logging.disable_progress_bar()
        where, extra = _source(target)
        dtype = getattr(torch, dtype_name) if dtype_name else (torch.bfloat16 if device == "cuda" else torch.float32)
        kwargs = {"dtype": dtype, **extra}
        if device == "cuda":
            kwargs["device_map"] = "auto"
        try:
            with _quiet_loading():
                tok = AutoTokenizer.from_pretrained(where, **extra)
                model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
        except OSError as exc:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            hint = " (HF_HUB_OFFLINE=1: only cached models can load)" if offline else ""
            raise DataError(f"transformers could not load {target!r}{hint}: {str(exc).splitlines()[0]}") from None
        if device != "cuda":
            model.to(device)
        model.eval()
        tok.padding_side = "left"  # decoder-only batching: every prompt must end where generation starts
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        _CACHE[key] = (tok, model)
        return tok, model


class TransformersLLM(LLM):
    """Hub ids, model directories or GGUF files through transformers, batched."""

    backend = "transformers"
    batched = True
    options_class = TransformersOptions
    cli_flags = {"--dtype": "dtype", "--chat": "chat"}
    text_options = ("dtype", "chat")

    def __init__(self, name: str, target: str, **opts):
        super().__init__(name, target, **opts)
        self.device = resolve_device(self.options.device)
        self.tokenizer, self.model = _load(target, self.device, self.options.dtype)
        self._prefix = None  # (token ids, KV cache) of the last shared prompt prefix

    def _prompt(self, text: str) -> str:
        if not self.options.chat:
            return text
        question, cue = split_answer_cue(text)
        return self.tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                                  add_generation_prompt=True) + cue

    def _prefix_cache(self, ids: list[int]):
        """The KV cache of `ids` (batch of one), computed once per distinct prefix and kept for the next batch."""
        import torch

        if self._prefix is not None and self._prefix[0] == ids:
            return self._prefix[1]
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.model.device), use_cache=True)
        self._prefix = (ids, out.past_key_values)
        return out.past_key_values

    def _static_copy(self, prefix, rows: int, length: int):
        """A StaticCache of `rows` rows and `length` positions whose first positions hold `prefix` (a one-row
        DynamicCache), or None where the prefix does not fit a layer (a sliding window shorter than the prefix). Preallocated, it spares the per-step concatenation of a DynamicCache, which copies the
        whole cache every token and dominated batched decoding on CPU (56% of a step at 64 rows)."""
        from transformers import StaticCache

        cache = StaticCache(config=self.model.config, max_cache_len=length)
        if len(cache.layers) != len(prefix.layers) or any(
                src.keys.shape[-2] > layer.max_cache_len for layer, src in zip(cache.layers, prefix.layers, strict=False)):
            return None  # a sliding-window layer shorter than the prefix: keep the dynamic cache's own handling
        for layer, src in zip(cache.layers, prefix.layers, strict=True):
            keys = src.keys.expand(rows, -1, -1, -1)
            values = src.values.expand(rows, -1, -1, -1)
            layer.lazy_initialization(keys, values)
            n = keys.shape[-2]
            layer.keys[:, :, :n] = keys
            layer.values[:, :, :n] = values
            layer.cumulative_length.fill_(n)
            if hasattr(layer, "cumulative_length_int"):
                layer.cumulative_length_int = n
        return cache

    def _inputs(self, prompts: list[str], max_new_tokens: int) -> dict:
        """Token ids for `generate`: the prefix all prompts share (at least 2 tokens) comes from a cached KV and
        is not read again; each row is [prefix][padding][own tokens], the padding masked out. A lone prompt
        shares with the prefix cached before it, as llama.cpp's one-at-a-time path does (the first one caches
        all its tokens but the last, so the second finds where the prompts part)."""
        import copy

        import torch

        tok, model = self.tokenizer, self.model
        ids = [tok(p)["input_ids"] for p in prompts]
        n = min(len(x) for x in ids)
        refs = ids
        if len(ids) == 1:
            refs = ids + [self._prefix[0] if self._prefix is not None else ids[0][: n - 1]]
        shared = 0
        while shared < n - 1 and all(len(x) > shared and x[shared] == ids[0][shared] for x in refs):
            shared += 1
        if shared < 2 or not self.options.prefix_cache:
            batch = tok(prompts, return_tensors="pt", padding=True)
            return {k: v.to(model.device) for k, v in batch.items()}
        width = max(len(x) for x in ids)
        pad = tok.pad_token_id
        rows = [x[:shared] + [pad] * (width - len(x)) + x[shared:] for x in ids]
        mask = [[1] * shared + [0] * (width - len(x)) + [1] * (len(x) - shared) for x in ids]
        prefix = self._prefix_cache(ids[0][:shared])
        cache = self._static_copy(prefix, len(ids), width + max_new_tokens)
        if cache is None:
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(len(ids))
        return {"input_ids": torch.tensor(rows, device=model.device),
                "attention_mask": torch.tensor(mask, device=model.device), "past_key_values": cache}

    def complete(self, requests: list[Request], params: Params) -> list[Completion]:
        import torch

        tok, model = self.tokenizer, self.model
        batch = self._inputs([self._prompt(r.prompt) for r in requests], params.max_tokens)
        gen = {"max_new_tokens": params.max_tokens, "pad_token_id": tok.pad_token_id,
               "stop_strings": list(params.stop), "tokenizer": tok}
        if params.temperature > 0:
            # One seed per batch, derived from its first key: reruns of the same batch sample the same texts.
            torch.manual_seed(item_seed(params.seed, requests[0].key))
            gen.update(do_sample=True, temperature=params.temperature)
        else:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = model.generate(**batch, **gen)
        new = out[:, batch["input_ids"].shape[1]:]
        results = []
        stop_ids = {tok.eos_token_id, tok.pad_token_id}
        for row in new.tolist():
            n = 0
            for t in row:
                if t in stop_ids:
                    break
                n += 1
            text, cut = cut_at_stop(tok.decode(row[:n], skip_special_tokens=True), params.stop)
            if cut:
                n = len(tok(text, add_special_tokens=False)["input_ids"])
            results.append(Completion(text, n, "stop" if cut or n < len(row) else "length"))
        return results
