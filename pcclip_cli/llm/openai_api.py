"""The `openai` backend: the openai SDK against OpenAI or any compatible server (vLLM, llama.cpp's server).

The key is read only from OPENAI_API_KEY and never shown: error messages are scrubbed of it. Requests run on a
bounded pool (`concurrency`) and are retried with exponential backoff on 429, 5xx, timeouts and refused
connections; retries are counted in the backend's stats.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pcclip_cli.core.errors import PcclipError

from .base import LLM, Completion, Params, Request, cut_at_stop, item_seed


class BackendUnavailable(PcclipError):
    """The server could not be reached, or kept failing, after every retry."""


@dataclass(frozen=True)
class OpenAIOptions:
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1; default: OpenAI
    concurrency: int = 4  # requests in flight at once
    retries: int = 5  # extra attempts per request on 429 / 5xx / timeouts / refused connections
    backoff: float = 1.0  # seconds before the first retry; doubles each time, capped at 30 s, with jitter
    timeout: float = 60.0  # seconds per request
    api: str = "auto"  # completions | chat | auto (completions for --base-url servers, chat for OpenAI's models)
    extra_body: dict = field(default_factory=dict)  # server-specific fields, e.g. {"repeat_penalty": 1.0}

    def __post_init__(self):
        if not 1 <= self.concurrency <= 256:
            raise PcclipError(f"--concurrency must be between 1 and 256, got {self.concurrency}")
        if not 0 <= self.retries <= 100:
            raise PcclipError(f"--retries must be between 0 and 100, got {self.retries}")
        if self.backoff < 0 or self.timeout <= 0:
            raise PcclipError("backoff must be >= 0 and timeout > 0 seconds")
        if self.api not in ("auto", "completions", "chat"):
            raise PcclipError(f"api must be completions, chat or auto, got {self.api!r}")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise PcclipError(f"--base-url must start with http:// or https://, got {self.base_url!r}")


class OpenAILLM(LLM):
    """OpenAI or any OpenAI-compatible server (vLLM, llama.cpp's server), with concurrent requests."""

    backend = "openai"
    options_class = OpenAIOptions
    cli_flags = {"--base-url": "base_url", "--concurrency": "concurrency", "--retries": "retries",
                 "--timeout": "timeout"}
    text_options = ("api", "extra_body")

    def __init__(self, name: str, target: str, **opts):
        super().__init__(name, target, **opts)
        key = os.environ.get("OPENAI_API_KEY", "")
        if not key and not self.options.base_url:
            raise PcclipError(f"OPENAI_API_KEY is not set; export it to use {name} (the key is read only from the "
                              "environment), or pass --base-url for a local OpenAI-compatible server")
        self._key = key
        import openai

        self._openai = openai
        # The SDK's own retries are off: ours count attempts and report where a run stopped.
        self.client = openai.OpenAI(api_key=key or "unused", base_url=self.options.base_url, max_retries=0,
                                    timeout=self.options.timeout)
        self.api = self.options.api if self.options.api != "auto" else (
            "completions" if self.options.base_url else "chat")
        self._lock = threading.Lock()
        self.where = self.options.base_url or "the OpenAI API"

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _once(self, req: Request, params: Params) -> Completion:
        common = {"model": self.target, "max_tokens": params.max_tokens, "temperature": params.temperature,
                  "stop": list(params.stop)[:4], "seed": item_seed(params.seed, req.key)}
        if self.options.extra_body:
            common["extra_body"] = dict(self.options.extra_body)
        if self.api == "completions":
            res = self.client.completions.create(prompt=req.prompt, **common)
            raw, reason = res.choices[0].text or "", res.choices[0].finish_reason
        else:
            res = self.client.chat.completions.create(messages=[{"role": "user", "content": req.prompt}], **common)
            raw, reason = res.choices[0].message.content or "", res.choices[0].finish_reason
        text, cut = cut_at_stop(raw, params.stop)
        tokens = getattr(res.usage, "completion_tokens", None) if res.usage else None
        return Completion(text, int(tokens if tokens is not None else len(text.split())),
                          "stop" if cut or reason == "stop" else "length")

    def _with_retries(self, req: Request, params: Params) -> Completion:
        oa = self._openai
        attempts = self.options.retries + 1
        for attempt in range(attempts):
            try:
                return self._once(req, params)
            except (oa.APITimeoutError, oa.APIConnectionError, oa.RateLimitError, oa.InternalServerError) as exc:
                failure = exc
            except oa.APIStatusError as exc:
                if exc.status_code < 500:
                    raise PcclipError(f"{self.where} refused the request for {self.target!r} "
                                      f"(HTTP {exc.status_code}: {self._scrub(_first_line(exc))})") from None
                failure = exc
            if attempt == attempts - 1:
                break
            delay = min(30.0, self.options.backoff * 2 ** attempt) * random.uniform(0.8, 1.2)
            retry_after = _retry_after(failure)
            if retry_after is not None:
                delay = min(60.0, max(delay, retry_after))
            with self._lock:
                self.stats.retries += 1
            time.sleep(delay)
        raise BackendUnavailable(f"{self.where} failed {attempts} time(s) for {self.target!r} "
                                 f"({type(failure).__name__}: {self._scrub(_first_line(failure))})")

    def complete(self, requests: list[Request], params: Params) -> list[Completion]:
        return [c for _, c in self.stream(requests, params)]

    def stream(self, requests: Iterable[Request], params: Params, batch_size: int = 1
               ) -> Iterator[tuple[Request, Completion]]:
        """A sliding window of `concurrency` requests; results come back in the order they finish."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        it = iter(requests)
        failure: BaseException | None = None
        pool = ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="pcclip-openai")
        pending: dict = {}

        def timed(req):
            t0 = time.perf_counter()
            comp = self._with_retries(req, params)
            with self._lock:
                self.stats.calls += 1
                self.stats.tokens += comp.tokens
                self.stats.seconds += time.perf_counter() - t0
            return comp

        try:
            exhausted = False
            while True:
                while not exhausted and failure is None and len(pending) < self.options.concurrency:
                    req = next(it, None)
                    if req is None:
                        exhausted = True
                        break
                    pending[pool.submit(timed, req)] = req
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    req = pending.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        # Stop submitting; requests already in flight still finish and are kept.
                        failure = failure or exc
                        continue
                    yield req, fut.result()
            if failure is not None:
                raise failure
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    try:
        value = response.headers.get("retry-after") if response is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
