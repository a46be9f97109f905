"""The one interface every LLM backend implements: complete a batch of requests, or stream them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from pcclip_cli.core.errors import DataError, PcclipError


@dataclass(frozen=True)
class Request:
    """One item to generate for: the rendered prompt, plus the structured item for backends that use it."""

    key: str
    prompt: str
    kind: str = "pairs"  # pairs | classes | descriptions
    first: str = ""
    second: str | None = None
    first_caption: str | None = None
    second_caption: str | None = None
    first_attributes: dict | None = None
    second_attributes: dict | None = None
    n: int = 0  # index of a description within its class


@dataclass(frozen=True)
class Params:
    max_tokens: int = 80
    temperature: float = 0.0
    stop: tuple[str, ...] = ("\nQ:",)
    seed: int = 0  # with temperature > 0 each item samples from a seed derived from this and its key

    def __post_init__(self):
        if not 1 <= self.max_tokens <= 4096:
            raise PcclipError(f"--max-tokens must be between 1 and 4096, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 5.0:
            raise PcclipError(f"--temperature must be between 0 and 5, got {self.temperature}")

    def as_record(self) -> dict:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "stop": list(self.stop),
                "seed": self.seed}


@dataclass
class Completion:
    text: str
    tokens: int  # tokens generated (up to the stop string)
    finish: str = "length"  # stop | length


@dataclass
class Stats:
    calls: int = 0  # completions requested from the model
    tokens: int = 0
    retries: int = 0
    seconds: float = 0.0  # time spent inside the backend

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def cut_at_stop(text: str, stop: Iterable[str]) -> tuple[str, bool]:
    """Cut `text` before the first stop string; backends that cannot stop early still agree on the text."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut], cut < len(text)


def split_answer_cue(prompt: str) -> tuple[str, str]:
    """(question, cue) for chat templates: a few-shot prompt ending in an answer cue such as "A:" keeps the cue
    out of the user's message and opens the assistant's turn with it, so the model answers instead of echoing it."""
    head, sep, last = prompt.rstrip(" ").rpartition("\n")
    if sep and last.endswith(":") and len(last) <= 12:
        return head.rstrip(), last
    return prompt, ""


def item_seed(seed: int, key: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=4).digest(), "little")


class LLM:
    """A loaded language model. Backends override `complete`; `stream` batches over it.

    The generation loop only ever calls `stream`, so a backend that can overlap work (openai's concurrent
    requests) overrides `stream` instead and results arrive in completion order.
    """

    backend: str = ""
    # Whether `complete` gains from several prompts at once; others get one prompt per call, so each record is
    # written the moment it is done.
    batched: bool = False
    # What the registry (registry.py) and `pcclip generate` learn from the class, without loading a model:
    # the options dataclass its constructor takes (None: it takes no options), which of generate's shared flags
    # it accepts (flag -> option field), and which option fields decide the generated text. Those last ones join
    # every record's params, so a run appending to a file made with other values refuses instead of mixing texts.
    options_class: ClassVar[type | None] = None
    cli_flags: ClassVar[dict[str, str]] = {}
    text_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, target: str, **opts):
        self.name = name
        self.target = target
        self.stats = Stats()
        # The declared options dataclass, built from `opts` and checked (None for a backend without options).
        self.options = self.check_options(opts)

    @classmethod
    def check_options(cls, opts: dict):
        """The options dataclass built from `opts` (None without options), or the error a bad option is."""
        from pcclip_cli.core.config import from_dict

        if cls.options_class is None:
            if opts:
                raise DataError(f"the {cls.backend} backend takes no options (got {', '.join(sorted(opts))})")
            return None
        return from_dict(cls.options_class, opts, source=f"{cls.backend} backend options")

    @classmethod
    def text_identity(cls, opts: dict) -> dict:
        """The text-deciding options of `opts` that differ from their defaults, as recorded in each record's
        params (an option left at its default is not recorded, so files made before it existed still resume)."""
        options = cls.check_options(opts)
        if options is None:
            return {}
        defaults = cls.options_class()
        recorded: dict = {}
        for name in cls.text_options:
            value = getattr(options, name)
            if value != getattr(defaults, name):
                recorded.update(cls.record_text_option(name, value))
        return recorded

    @classmethod
    def record_text_option(cls, name: str, value) -> dict:
        """How one text-deciding option is recorded; a backend overrides this for a value that names a file."""
        return {name: value}

    def complete(self, requests: list[Request], params: Params) -> list[Completion]:
        raise NotImplementedError

    def stream(self, requests: Iterable[Request], params: Params, batch_size: int = 1
               ) -> Iterator[tuple[Request, Completion]]:
        import time

        batch: list[Request] = []
        batch_size = batch_size if self.batched else 1

        def run(chunk):
            t0 = time.perf_counter()
            results = self.complete(chunk, params)
            self.stats.seconds += time.perf_counter() - t0
            self.stats.calls += len(chunk)
            self.stats.tokens += sum(c.tokens for c in results)
            return zip(chunk, results, strict=True)

        for req in requests:
            batch.append(req)
            if len(batch) >= batch_size:
                yield from run(batch)
                batch = []
        if batch:
            yield from run(batch)

    def describe(self) -> dict:
        return {"name": self.name, "backend": self.backend, "target": self.target}

    def close(self) -> None:
        """Release what the backend holds (threads, clients); loaded weights stay cached per process."""
