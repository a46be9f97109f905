"""The `llamacpp` backend: GGUF models through llama-cpp-python, as plain completions of the few-shot prompt.

One item at a time (`--batch-size 1`) goes through `Llama.create_completion`; larger batches decode together
through the low-level batch API (llamacpp_batch.py), which gives the same greedy tokens.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError

from .base import LLM, Completion, Params, Request, cut_at_stop, item_seed, split_answer_cue

GGUF_MAGIC = b"GGUF"
_CACHE: dict[tuple, object] = {}
_DECODERS: list = []  # batch decoders hold contexts over cached models: freed before the models at exit
_LOCK = threading.Lock()


@dataclass(frozen=True)
class LlamaCppOptions:
    n_ctx: int = 2048  # the COCO prompt is about 330 tokens; room for long captions and 80 new tokens
    n_threads: int | None = None  # default: all cores
    repeat_penalty: float = 1.0  # llama.cpp's completion default; the server's default is 1.1
    grammar: str | None = None  # a GBNF file: every completion must match its `root` rule
    chat: bool = False  # wrap each prompt in the GGUF's chat template (the paper completes the raw prompt)

    def __post_init__(self):
        if not 128 <= self.n_ctx <= 131072:
            raise PcclipError(f"n_ctx must be between 128 and 131072, got {self.n_ctx}")
        if self.n_threads is not None and self.n_threads < 1:
            raise PcclipError(f"n_threads must be at least 1, got {self.n_threads}")


def check_gguf(path: str | Path) -> Path:
    """A readable GGUF file, or a DataError saying what is wrong with it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"GGUF model not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the .gguf file inside it")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise DataError(f"{path} is not a GGUF file (it does not start with 'GGUF'); convert it with llama.cpp's "
                        "convert_hf_to_gguf.py or pass a transformers model directory with --llm transformers:DIR")
    return path.resolve()


@contextlib.contextmanager
def _captured_stderr():
    """Route the C library's stderr to a temporary file while loading: llama.cpp prints notices there even when
    asked not to, which would tear through the progress bar. Yields a function returning what was captured."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lambda: (tmp.seek(0), tmp.read().decode("utf-8", "replace"))[1]
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _close_all() -> None:
    # Closed before interpreter teardown: Llama.__del__ during teardown prints a TypeError traceback.
    for decoder in _DECODERS:
        with contextlib.suppress(Exception):
            decoder.close()
    _DECODERS.clear()
    for model in _CACHE.values():
        with contextlib.suppress(Exception):
            model.close()
    _CACHE.clear()


def check_grammar(path: str | Path, llama) -> str:
    """The text of a GBNF grammar file that llama.cpp parses (with a `root` rule), or a DataError."""
    import llama_cpp as lc

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"grammar file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"grammar file {path} is not UTF-8 text") from None
    with _captured_stderr() as captured:
        sampler = lc.llama_sampler_init_grammar(llama._model.vocab, text.encode("utf-8"), b"root")
        said = [] if sampler else [ln.strip() for ln in captured().splitlines()
                                   if "parse" in ln or "error" in ln.lower()]
    if not sampler:
        detail = f" ({said[0][:200]})" if said else ""
        raise DataError(f"grammar file {path} does not parse as GBNF{detail}; it needs a `root ::= ...` rule, "
                        "see llama.cpp's grammars/README.md")
    lc.llama_sampler_free(sampler)
    return text


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return " amx_tile" in fh.read(200_000)
    except OSError:
        return False


@contextlib.contextmanager
def _no_extra_buffers():
    """Load weights into plain CPU buffers on AMX machines: llama.cpp's AMX matmul, picked through the "extra
    buffer types", crashes with SIGSEGV on some Sapphire Rapids hosts (llama.cpp issue 20824, unfixed; this
    machine is one). PCCLIP_LLAMA_EXTRA_BUFFERS=1 keeps them. Elsewhere the default (repacked weights) is kept."""
    from llama_cpp import llama_cpp  # the ctypes module that Llama.__init__ calls

    if not _cpu_has_amx() or os.environ.get("PCCLIP_LLAMA_EXTRA_BUFFERS") == "1":
        yield
        return
    original = llama_cpp.llama_model_default_params

    def params():
        p = original()
        p.use_extra_bufts = False
        return p

    llama_cpp.llama_model_default_params = params
    try:
        yield
    finally:
        llama_cpp.llama_model_default_params = original


def _load(path: Path, opts: LlamaCppOptions):
    key = (str(path), opts.n_ctx, opts.n_threads)
    with _LOCK:
        if key not in _CACHE:
            from llama_cpp import Llama

            if not _CACHE:
                atexit.register(_close_all)
            with _captured_stderr() as captured, _no_extra_buffers():
                try:
                    threads = opts.n_threads or os.cpu_count() or 1
                    # Prompts and batches run on n_threads_batch, which llama-cpp-python would otherwise set to
                    # every core whatever --threads says.
                    _CACHE[key] = Llama(model_path=str(path), n_ctx=opts.n_ctx, n_threads=threads,
                                        n_threads_batch=threads, verbose=False)
                except (ValueError, RuntimeError) as exc:
                    lines = [ln for ln in captured().splitlines() if ln.strip()]
                    detail = f"; llama.cpp said: {lines[-1][:200]}" if lines else ""
                    raise DataError(f"llama.cpp could not load {path} ({exc}){detail}; is it a complete GGUF "
                                    "model?") from None
        return _CACHE[key]


class LlamaCppLLM(LLM):
    """GGUF files through llama.cpp, in process."""

    backend = "llamacpp"
    batched = True
    options_class = LlamaCppOptions
    cli_flags = {"--threads": "n_threads", "--grammar": "grammar", "--chat": "chat"}
    text_options = ("grammar", "chat", "repeat_penalty")

    @classmethod
    def record_text_option(cls, name: str, value) -> dict:
        if name != "grammar":
            return {name: value}
        # The grammar's text decides the completions, wherever the file lives.
        import hashlib

        path = Path(value).expanduser()
        if not path.is_file():
            raise DataError(f"grammar file not found: {path}")
        return {"grammar_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}

    def __init__(self, name: str, target: str, **opts):
        super().__init__(name, target, **opts)
        self.path = check_gguf(target)
        self.model = _load(self.path, self.options)
        self._decoder = None
        self.grammar = check_grammar(self.options.grammar, self.model) if self.options.grammar else None
        self._chat = self._chat_formatter() if self.options.chat else None

    def _chat_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.model.metadata.get("tokenizer.chat_template")
        if not template:
            raise DataError(f"{self.path.name} carries no chat template (a base model?); drop --chat, or give "
                            "an instruction-tuned GGUF")
        eos, bos = self.model.token_eos(), self.model.token_bos()
        text = lambda t: self.model.detokenize([t], special=True).decode("utf-8", "ignore") if t >= 0 else ""  # noqa: E731
        return Jinja2ChatFormatter(template, eos_token=text(eos), bos_token=text(bos))

    def _prompt(self, text: str) -> str:
        if self._chat is None:
            return text
        question, cue = split_answer_cue(text)
        return self._chat(messages=[{"role": "user", "content": question}]).prompt + cue

    def complete(self, requests: list[Request], params: Params) -> list[Completion]:
        if len(requests) > 1:
            return self._complete_batched(requests, params)
        return self._complete_one_by_one(requests, params)

    def _complete_batched(self, requests: list[Request], params: Params) -> list[Completion]:
        from .llamacpp_batch import BatchDecoder, prompt_tokens

        prompts = [prompt_tokens(self.model, self._prompt(r.prompt)) for r in requests]
        longest = max(len(p) for p in prompts) + params.max_tokens
        if longest > self.options.n_ctx:
            raise PcclipError(f"a prompt of {longest - params.max_tokens} tokens plus --max-tokens "
                              f"{params.max_tokens} exceeds the context of {self.options.n_ctx} tokens (n_ctx)")
        if self._decoder is None:
            self._decoder = BatchDecoder(self.model)
            _DECODERS.append(self._decoder)
        with _LOCK:
            decoded = self._decoder.run(prompts, max_tokens=params.max_tokens, temperature=params.temperature,
                                        seeds=[item_seed(params.seed, r.key) for r in requests],
                                        stop=params.stop, repeat_penalty=self.options.repeat_penalty,
                                        grammar=(self.grammar, "root") if self.grammar else None)
        out = []
        for d in decoded:
            text, cut = cut_at_stop(d.text.decode("utf-8", errors="ignore"), params.stop)
            out.append(Completion(text, len(d.tokens), "stop" if cut or d.finish == "stop" else "length"))
        return out

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            if self._decoder in _DECODERS:
                _DECODERS.remove(self._decoder)
            self._decoder = None

    def _complete_one_by_one(self, requests: list[Request], params: Params) -> list[Completion]:
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_string(self.grammar, verbose=False) if self.grammar else None
        out = []
        for req in requests:
            # llama-cpp-python reuses the KV cache of the longest common prefix with the previous prompt, so the
            # shared few-shot demonstrations are read once, not once per item.
            res = self.model.create_completion(
                self._prompt(req.prompt), max_tokens=params.max_tokens, temperature=params.temperature, stop=list(params.stop),
                seed=item_seed(params.seed, req.key), repeat_penalty=self.options.repeat_penalty, grammar=grammar)
            choice = res["choices"][0]
            text, cut = cut_at_stop(choice["text"], params.stop)
            finish = "stop" if cut or choice.get("finish_reason") == "stop" else "length"
            out.append(Completion(text, int(res["usage"]["completion_tokens"]), finish))
        return out
