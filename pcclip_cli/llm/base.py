"""The one interface every LLM backend implements: complete a batch of requests, or stream them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pcclip_cli.core.errors import PcclipError


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

    def __init__(self, name: str, target: str):
        self.name = name
        self.target = target
        self.stats = Stats()

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
