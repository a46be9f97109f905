"""Webdataset shards (the img2dataset / open_clip layout) into pcclip image records: a manifest plus an image folder."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.data.records import IMAGE_SUFFIXES, OnError

# The image members webdataset writers use, in the order a sample's image is picked from.
IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
_DONE_DIR = ".shards"  # one finished-shard record file per shard: what makes the conversion resumable


@dataclass
class Sample:
    """One decoded-enough sample of a shard: its key, the image bytes and suffix, caption and json metadata."""

    shard: str
    key: str
    image: bytes | None
    suffix: str | None
    caption: str | None
    meta: dict = field(default_factory=dict)


@dataclass
class ShardReport:
    shard: str
    samples: int = 0
    bad_images: list[str] = field(default_factory=list)
    truncated: str | None = None  # the reader's error when the tar stream ended early


def expand_shards(specs: list[str]) -> list[str]:
    """Brace patterns (`shards/{00000..00009}.tar`), local paths and `pipe:` / URL specs into a list of shards;
    local files must exist."""
    from braceexpand import braceexpand

    shards: list[str] = []
    for spec in specs:
        for one in braceexpand(str(spec)):
            if not is_remote(one):
                p = Path(one).expanduser()
                if p.is_dir():
                    found = sorted(str(q) for q in p.glob("*.tar"))
                    if not found:
                        raise DataError(f"no .tar shards in folder {p}")
                    shards += found
                    continue
                if not p.is_file():
                    raise DataError(f"shard not found: {p}; pass .tar files, a folder of them, a brace pattern "
                                    "such as shards/{00000..00009}.tar, or a pipe: URL")
                one = str(p)
            shards.append(one)
    if not shards:
        raise DataError("no shards given")
    return shards


def is_remote(spec: str) -> bool:
    return spec.startswith("pipe:") or re.match(r"^[a-z][a-z0-9+.-]*://", spec) is not None


def shard_name(spec: str) -> str:
    """A file-system-safe name for a shard (its file stem, or for a pipe: command the last .tar word)."""
    words = re.findall(r"[^\s'\"]+\.tar", spec)
    base = os.path.basename(words[-1] if words else spec.split()[-1] if spec.split() else spec)
    base = re.sub(r"\.tar$", "", base)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base) or "shard"


def _caption(sample: dict) -> tuple[str | None, dict]:
    meta = {}
    if sample.get("json"):
        try:
            meta = json.loads(sample["json"])
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
    text = sample.get("txt")
    caption = text.decode("utf-8", "replace").strip() if text else None
    if not caption and isinstance(meta.get("caption"), str):
        caption = meta["caption"].strip()
    return caption or None, meta


def check_image(data: bytes) -> str | None:
    """None when the bytes decode as an image, else the decoder's complaint."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception as exc:  # PIL raises many types for corrupt bytes
        return type(exc).__name__
    return None


def read_shard(spec: str, report: ShardReport) -> Iterator[Sample]:
    """Samples of one shard, as the webdataset library reads it; a read error ends the shard and is recorded
    in `report.truncated` (the samples before it are kept)."""
    import webdataset as wds

    def handler(exc: Exception) -> bool:
        report.truncated = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        return False  # stop this shard; samples already yielded stay

    ds = wds.WebDataset([spec], shardshuffle=False, handler=handler, empty_check=False,
                        nodesplitter=None, workersplitter=None)
    it = iter(ds)
    while True:
        try:
            raw = next(it)
        except StopIteration:
            return
        except Exception as exc:  # a truncated tar can surface here rather than through the handler
            handler(exc)
            return
        suffix = next((k for k in IMAGE_KEYS if raw.get(k)), None)
        caption, meta = _caption(raw)
        report.samples += 1
        yield Sample(shard_name(spec), str(raw["__key__"]), raw.get(suffix) if suffix else None, suffix, caption, meta)


def convert_shards(shards: list[str], out: str | Path, *, on_error: OnError | str = OnError.stop,
                   warn: Callable[[str], None] | None = None, progress=None) -> dict:
    """Extract webdataset shards into OUT/images/<shard>/<key>.<ext> and OUT/captions.jsonl (one record per
    sample: image, id = the sample key, caption from .txt or json["caption"], the json's other keys as
    attributes). Shards are done one at a time and a finished one is not redone on a rerun; a corrupt image or
    a truncated shard stops the run (naming it) or, with on_error=skip, is skipped and counted."""
    on_error = OnError(on_error)
    out = Path(out)
    specs = expand_shards(shards)
    names = [shard_name(s) for s in specs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise DataError(f"two shards share the name {sorted(dupes)[0]!r}; give each shard a distinct file name")
    if out.exists() and not out.is_dir():
        raise PcclipError(f"--out {out} is a file; pass a folder to write images/ and captions.jsonl into")
    done_dir = out / _DONE_DIR
    done_dir.mkdir(parents=True, exist_ok=True)
    totals = {"samples": 0, "records": 0, "bad_images": 0, "no_image": 0, "no_caption": 0,
              "truncated_shards": 0, "resumed_shards": 0}
    bad: list[dict] = []
    for n, (spec, name) in enumerate(zip(specs, names, strict=True)):
        done = done_dir / f"{name}.jsonl"
        if done.exists():
            totals["resumed_shards"] += 1
            if progress:
                progress(n + 1, len(specs))
            continue
        img_dir = out / "images" / name
        img_dir.mkdir(parents=True, exist_ok=True)
        report = ShardReport(spec)
        rows = []
        for s in read_shard(spec, report):
            if s.image is None:
                totals["no_image"] += 1
                continue
            problem = check_image(s.image)
            if problem:
                if on_error == OnError.stop:
                    raise DataError(f"shard {spec}: sample {s.key} holds a corrupt {s.suffix} image ({problem}); "
                                    "fix the shard, or pass --on-bad-image skip")
                report.bad_images.append(s.key)
                bad.append({"shard": spec, "key": s.key, "reason": problem})
                continue
            rel = Path("images") / name / (re.sub(r"[^A-Za-z0-9._-]+", "_", s.key) + "." + s.suffix)
            (out / rel).write_bytes(s.image)
            row = {"image": str(rel), "id": s.key, **({"caption": s.caption} if s.caption else {})}
            extra = {k: v for k, v in s.meta.items() if k not in ("caption", "key") and not isinstance(v, dict | list)}
            if extra:
                row["attributes"] = extra
            totals["no_caption"] += s.caption is None
            rows.append(row)
        if report.truncated:
            if on_error == OnError.stop:
                raise DataError(f"shard {spec} is truncated or unreadable after {report.samples} samples "
                                f"({report.truncated}); re-fetch it, or pass --on-bad-image skip to keep the "
                                "samples before the damage")
            totals["truncated_shards"] += 1
            bad.append({"shard": spec, "key": None, "reason": report.truncated})
            if warn:
                warn(f"shard {spec} is truncated after {report.samples} samples ({report.truncated}); kept those")
        if report.bad_images and warn:
            warn(f"shard {spec}: skipped {len(report.bad_images)} corrupt images ({', '.join(report.bad_images[:3])})")
        totals["bad_images"] += len(report.bad_images)
        totals["samples"] += report.samples
        tmp = done.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, done)  # the shard counts as done only once its records are complete
        if progress:
            progress(n + 1, len(specs))
    # The manifest is rebuilt from every shard's records, so a resumed run writes the same file as one pass.
    seen: set[str] = set()
    manifest_tmp = out / "captions.jsonl.tmp"
    with manifest_tmp.open("w", encoding="utf-8") as fh:
        for name in names:
            for line in (done_dir / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if row["id"] in seen:  # keys repeat across shards written by different tools
                    row["id"] = f"{name}/{row['id']}"
                seen.add(row["id"])
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                totals["records"] += 1
    if totals["records"] == 0:
        manifest_tmp.unlink()
        raise DataError(f"no usable images in {len(specs)} shard(s); check they hold {'/'.join(IMAGE_KEYS[:3])} members")
    os.replace(manifest_tmp, out / "captions.jsonl")
    return {"out": str(out), "manifest": str(out / "captions.jsonl"), "shards": len(specs), **totals,
            "skipped": bad}


__all__ = ["IMAGE_SUFFIXES", "convert_shards", "expand_shards", "read_shard"]
