"""Generate comparatives with an LLM: image pairs, class pairs or class descriptions, resumable and shardable.

Records are appended to the output JSONL and flushed one by one. Every record has a `key` (`"A -> B"` for
pairs and classes, `"NAME #k"` for descriptions); a run started again reads the keys already present, skips
them, and generates only the rest, so a killed run loses at most the record it was writing (a torn last line is
cut off before appending). Runs that append to the same file must agree on the settings that decide a text —
kind, LLM, backend, prompt and generation parameters — otherwise the run refuses. Which items a run covers
(`--pairs`, `--images`, `--seed`, `--shard`) may change between runs: records are keyed, so the file simply
grows to the union, never with a key twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.llm.base import Params, Request

from .plan import (
    GenerateConfig,
    Kind,
    Plan,
    classes_plan,
    description_key,
    descriptions_plan,
    pair_key,
    pairs_plan,
)
from .result import GenerationResult

SETTINGS_FIELDS = ("kind", "llm", "backend", "prompt_sha256", "params")


# ---- the append-only output ---------------------------------------------------------------------------------

def _digest(*parts) -> int:
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(str(p).encode("utf-8"))
        h.update(b"\0")
    return int.from_bytes(h.digest(), "little")


def repair_tail(path: Path) -> int:
    """Cut a torn final line (no newline: the writer was killed mid-record); returns the bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "r+b") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        pos = size
        while pos > 0:
            step = min(65536, pos)
            fh.seek(pos - step)
            block = fh.read(step)
            nl = block.rfind(b"\n")
            if nl != -1:
                keep = pos - step + nl + 1
                break
            pos -= step
        else:
            keep = 0
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return size - keep


def _run_settings(kind: str, llm_name: str, backend: str, prompt, recorded: dict) -> dict:
    return {"kind": kind, "llm": llm_name, "backend": backend, "prompt_sha256": prompt.sha256, "params": recorded}


def _settings(rec: dict) -> dict:
    return {k: rec.get(k) for k in SETTINGS_FIELDS}


def _describe_mismatch(old: dict, new: dict) -> str:
    for k in SETTINGS_FIELDS:
        if old.get(k) != new.get(k):
            if k == "params":
                diff = sorted(p for p in set(old[k] or {}) | set(new[k] or {})
                              if (old[k] or {}).get(p) != (new[k] or {}).get(p))
                return ", ".join(f"{p} {(old[k] or {}).get(p)!r} (now {(new[k] or {}).get(p)!r})" for p in diff)
            return f"{k} {old.get(k)!r} (now {new.get(k)!r})"
    return "settings"


def read_done(path: Path, settings: dict) -> dict[int, int]:
    """Keys already in `path` (as digests -> digest of their inputs), refusing records made with other settings.

    A key found twice (two writers on one file, before outputs were locked, or files concatenated) is removed
    first by `remove_duplicate_keys`; here it would be an error, so resume never accepts such a file."""
    from pcclip_cli.data.comparatives import read_comparatives

    done: dict[int, int] = {}
    first_line: dict[int, int] = {}
    if not path.exists():
        return done
    for comp in read_comparatives(path, what="output file", require_key="choose another --out"):
        lineno, rec = comp.line, comp.record
        if _settings(rec) != settings:
            raise PcclipError(f"{path} already holds records made with different settings ({lineno}: "
                              f"{_describe_mismatch(_settings(rec), settings)}); pass another --out or delete it "
                              "to start over")
        kd = _digest(rec["key"])
        if kd in done:
            raise DataError(f"{path}:{lineno}: key {rec['key']!r} appears twice (first on line {first_line[kd]}); "
                            "each key must appear once")
        first_line[kd] = lineno
        done[kd] = _digest(rec.get("first_caption"), rec.get("second_caption"))
    return done


def _open_output(out: Path, settings: dict) -> tuple[int, int, dict[int, int]]:
    """Cut a torn tail, drop repeated keys (with a warning and a count) and read the keys done; the caller
    holds the output's lock, so no other writer is mid-record."""
    from pcclip_cli.core.notices import notify

    from .dedupe import remove_duplicate_keys

    repaired = repair_tail(out)
    removed = remove_duplicate_keys(out)
    if removed:
        notify(f"warning: {out} held {removed} records whose key was already in the file (two runs wrote to it "
               "at once?); kept the first of each and removed the rest")
    return repaired, removed, read_done(out, settings)


def _record(req: Request, text: str, llm, prompt, params: dict) -> dict:
    rec = {"key": req.key, "kind": req.kind, "first": req.first, "second": req.second,
           "first_caption": req.first_caption, "second_caption": req.second_caption, "text": text.strip(),
           "llm": llm.name, "backend": llm.backend, "prompt": prompt.name, "prompt_sha256": prompt.sha256,
           "params": params}
    if req.kind == "descriptions":
        rec["n"] = req.n
    return rec


def _params(cfg_max_tokens: int, temperature: float, stop, seed: int) -> tuple[Params, dict]:
    params = Params(max_tokens=cfg_max_tokens, temperature=temperature, stop=tuple(stop), seed=seed)
    recorded = {"max_tokens": params.max_tokens, "temperature": params.temperature, "stop": list(params.stop)}
    if params.temperature > 0:
        # The seed decides sampled texts; with greedy decoding it only decides which pairs are drawn.
        recorded["seed"] = params.seed
    return params, recorded


# ---- the run --------------------------------------------------------------------------------------------------

def run_plan(plan: Plan, llm, prompt, params: Params, recorded: dict, out: Path | None, *, kind: str,
             batch_size: int = 8, progress=None, collect: bool = False) -> GenerationResult:
    """Generate every item of `plan` not already in `out`; returns counts (and the records when `collect`)."""
    if out is None:
        return _run_plan(plan, llm, prompt, params, recorded, None, kind=kind, batch_size=batch_size,
                         progress=progress, collect=collect)
    from pcclip_cli.core.locks import output_lock

    with output_lock(out):
        return _run_plan(plan, llm, prompt, params, recorded, Path(out), kind=kind, batch_size=batch_size,
                         progress=progress, collect=collect)


def _run_plan(plan: Plan, llm, prompt, params: Params, recorded: dict, out: Path | None, *, kind: str,
              batch_size: int, progress, collect: bool) -> GenerationResult:
    settings = _run_settings(kind, llm.name, llm.backend, prompt, recorded)
    repaired = removed = 0
    done: dict[int, int] = {}
    if out is not None:
        if out.is_dir():
            raise DataError(f"--out {out} is a directory; give a .jsonl file path")
        repaired, removed, done = _open_output(out, settings)
    counts = {"skipped": 0, "generated": 0}
    collected: list[dict] = []
    t0 = time.perf_counter()

    def report():
        if progress:
            elapsed = max(time.perf_counter() - t0, 1e-9)
            rates = {"it/s": counts["generated"] / elapsed}
            if llm.backend != "template":  # the oracle writes words, not model tokens: no tok/s for it
                rates["tok/s"] = llm.stats.tokens / elapsed
            progress(counts["skipped"] + counts["generated"], plan.total, **rates)

    def todo() -> Iterator[Request]:
        for req in plan.items():
            kd = _digest(req.key)
            if kd in done:
                if done[kd] != _digest(req.first_caption, req.second_caption):
                    raise PcclipError(f"{out} has a record for {req.key!r} made from a different caption; "
                                      "the captions file changed: pass another --out")
                counts["skipped"] += 1
                if counts["skipped"] % 1000 == 0:
                    report()
                continue
            yield req

    report()
    fh = None
    try:
        for req, comp in llm.stream(todo(), params, batch_size):
            rec = _record(req, comp.text, llm, prompt, recorded)
            if out is not None:
                try:
                    if fh is None:
                        out.parent.mkdir(parents=True, exist_ok=True)
                        fh = open(out, "a", encoding="utf-8")
                    # One write per record, flushed: a kill (or a full disk) leaves at most one torn last line,
                    # which resume cuts.
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    fh.flush()
                except OSError as exc:
                    from pcclip_cli.core.errors import WriteError, os_error_message

                    fh = _close_quietly(fh)
                    raise WriteError(os_error_message(exc, out)) from None
            if collect:
                collected.append(rec)
            counts["generated"] += 1
            report()
    except PcclipError as exc:
        where = f" in {out}" if out is not None else ""
        raise type(exc)(f"{exc}; stopped with {counts['skipped'] + counts['generated']} of {plan.total} items "
                        f"done ({counts['generated']} new){where}; re-run the same command to resume") from None
    finally:
        _close_quietly(fh)
    report()
    elapsed = time.perf_counter() - t0
    stats = llm.stats.as_dict()
    return GenerationResult(
        out=str(out) if out is not None else None, kind=kind, llm=llm.name, backend=llm.backend,
        prompt=prompt.name, prompt_sha256=prompt.sha256, source=plan.source, total=plan.total,
        skipped=counts["skipped"], generated=counts["generated"], llm_calls=stats["calls"], tokens=stats["tokens"],
        retries=stats["retries"], seconds=round(elapsed, 3),
        tokens_per_s=(round(stats["tokens"] / stats["seconds"], 2)
                      if stats["seconds"] > 0 and llm.backend != "template" else None),
        repaired_bytes=repaired, duplicates_removed=removed, params=recorded,
        records=collected if collect else None)


def _close_quietly(fh) -> None:
    """Close an append handle whose buffered bytes may not fit on the disk any more (the error was reported)."""
    if fh is not None:
        try:
            fh.close()
        except OSError:
            pass


@dataclass
class Job:
    """A validated generation run: plan built, output checked, LLM loaded; `run` does the work."""

    cfg: GenerateConfig
    plan: Plan
    prompt: object
    params: Params
    recorded: dict
    llm: object
    repaired: int = 0
    removed: int = 0  # records of a repeated key, dropped before the run

    def run(self, progress=None) -> GenerationResult:
        try:
            result = run_plan(self.plan, self.llm, self.prompt, self.params, self.recorded, self.cfg.out,
                              kind=self.cfg.kind.value, batch_size=self.cfg.batch_size, progress=progress)
        finally:
            self.llm.close()
        result.shard = str(self.cfg.shard)
        result.repaired_bytes += self.repaired
        result.duplicates_removed += self.removed
        return result


def prepare(cfg: GenerateConfig, *, device: str | None = None) -> Job:
    """Everything that can fail on bad input, before the first LLM call: prompt, items, output file, model (loaded
    on `device` by the backends that run on one; None: auto)."""
    from pcclip_cli.llm.registry import get_llm, resolve, text_identity

    from .prompts import DEFAULT_PROMPT, load_prompt

    prompt = load_prompt(cfg.prompt or DEFAULT_PROMPT[cfg.kind.value], cfg.kind.value)
    params, recorded = _params(cfg.max_tokens, cfg.temperature, prompt.stop, cfg.seed)
    # The backend's text-deciding options (a grammar, chat wrapping, the weights' dtype, ...) join the identity
    # every record carries, so runs appending to one file must agree on them too.
    recorded.update(text_identity(cfg.llm, cfg.backend_options))
    if cfg.kind is Kind.pairs:
        plan = pairs_plan(cfg, prompt)
    elif cfg.kind is Kind.classes:
        plan = classes_plan(cfg, prompt)
    else:
        plan = descriptions_plan(cfg, prompt)
    repaired = removed = 0
    if cfg.out is not None and Path(cfg.out).exists():
        # Refuse a mismatched output file before loading a model that may take minutes to load.
        from pcclip_cli.core.locks import output_lock

        name, backend, _ = resolve(cfg.llm)
        with output_lock(cfg.out):  # another run may be mid-record: never cut its line
            repaired, removed, _ = _open_output(Path(cfg.out), _run_settings(cfg.kind.value, name, backend, prompt,
                                                                       recorded))
    llm = get_llm(cfg.llm, device=device, **cfg.backend_options)
    return Job(cfg, plan, prompt, params, recorded, llm, repaired, removed)


def generate(cfg: GenerateConfig, progress=None, *, device: str | None = None) -> GenerationResult:
    """`pcclip generate`: build the plan, load the LLM, and append the missing records to cfg.out."""
    return prepare(cfg, device=device).run(progress)


def _records_for(out: Path, keys: list[str]) -> list[dict]:
    from pcclip_cli.data.comparatives import read_comparatives

    wanted = set(keys)
    found = {c.record["key"]: c.record for c in read_comparatives(out, what="output file")
             if c.record.get("key") in wanted}
    return [found[k] for k in keys if k in found]


def _library_run(llm_name: str, requests: list[Request], kind: str, prompt_spec: str, max_tokens: int,
                 temperature: float, seed: int, out: Path | None, backend_opts: dict, device: str | None,
                 progress=None) -> list[dict]:
    from pcclip_cli.llm.registry import get_llm, text_identity

    from .prompts import load_prompt

    prompt = load_prompt(prompt_spec, kind)
    params, recorded = _params(max_tokens, temperature, prompt.stop, seed)
    recorded.update(text_identity(llm_name, backend_opts))
    rendered = [_render_request(r, prompt) for r in requests]
    plan = Plan(len(rendered), lambda: iter(rendered), f"{len(rendered)} items")
    llm = get_llm(llm_name, device=device, **backend_opts)
    try:
        summary = run_plan(plan, llm, prompt, params, recorded, out, kind=kind, progress=progress,
                           collect=out is None)
    finally:
        llm.close()
    if out is None:
        by_key = {r["key"]: r for r in summary.records}
        return [by_key[r.key] for r in rendered]
    return _records_for(Path(out), [r.key for r in rendered])


def _render_request(req: Request, prompt) -> Request:
    from dataclasses import replace

    if req.kind == "descriptions":
        return replace(req, prompt=prompt.render(class_name=req.first))
    return replace(req, prompt=prompt.render(first=req.first, second=req.second))


def generate_class_comparatives(llm: str, pairs: Iterable[tuple[str, str]], *, prompt: str = "classes",
                                max_tokens: int = 80, temperature: float = 0.0, out: Path | None = None,
                                seed: int = 0, device: str | None = None, progress=None, **backend_opts) -> list[dict]:
    """Texts saying how class `first` differs visually from `second`, one record per pair, in the given order.

    With `out`, records are appended there and pairs already in it are not generated again (the same resumable
    file `pcclip generate --kind classes` writes); without it they are only returned.
    """
    unique = list(dict.fromkeys((" ".join(a.split()), " ".join(b.split())) for a, b in pairs))
    for a, b in unique:
        if not a or not b or a == b:
            raise PcclipError(f"bad class pair ({a!r}, {b!r}): two different, non-empty class names are needed")
    reqs = [Request(pair_key(a, b), "", "classes", a, b) for a, b in unique]
    return _library_run(llm, reqs, "classes", prompt, max_tokens, temperature, seed, out, backend_opts, device,
                        progress)


def generate_descriptions(llm: str, classes: Iterable[str], n: int = 1, *, prompt: str = "descriptions",
                          max_tokens: int = 80, temperature: float = 0.0, out: Path | None = None, seed: int = 0,
                          device: str | None = None, progress=None, **backend_opts) -> list[dict]:
    """`n` extended descriptions per class (App. C.3), records in class order then index order."""
    if n < 1:
        raise PcclipError(f"n must be at least 1, got {n}")
    names = list(dict.fromkeys(" ".join(c.split()) for c in classes))
    if not names or not all(names):
        raise PcclipError("generate_descriptions needs at least one non-empty class name")
    reqs = [Request(description_key(c, k), "", "descriptions", c, None, n=k) for c in names for k in range(n)]
    return _library_run(llm, reqs, "descriptions", prompt, max_tokens, temperature, seed, out, backend_opts,
                        device, progress)
