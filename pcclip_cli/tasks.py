"""Benchmark task files (groups, attributes, texts) and their trials; labelled images come from `datasets`."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from pathlib import Path

# The dataset types and loaders live in the datasets package; they are re-exported here for existing callers.
from .datasets.base import NAMED_DATASETS, Dataset, LabeledImage, display_name, load_dataset  # noqa: F401
from .errors import DataError, PcclipError
from .io import read_jsonl, sha256_file

DATA_ROOT_MARK = "{data_root}"


def load_manifest(path: Path) -> Dataset:
    """JSONL records with `image` (relative to the file) and optional `label`, `split`, `id`, `attributes`;
    other keys become attributes too (the shapes world's captions.jsonl and classes/*.jsonl both read)."""
    path = Path(path)
    items, seen = [], set()
    for lineno, rec in read_jsonl(path, what="manifest"):
        image = rec.get("image")
        if not isinstance(image, str) or not image:
            raise DataError(f"{path}:{lineno}: missing \"image\" (a path relative to {path.parent})")
        rid = str(rec.get("id") or image)
        if rid in seen:
            raise DataError(f"{path}:{lineno}: duplicate id {rid!r}; ids must be unique")
        seen.add(rid)
        attrs = rec.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise DataError(f"{path}:{lineno}: \"attributes\" must be an object")
        extra = {k: v for k, v in rec.items() if k not in ("image", "id", "label", "split", "attributes")}
        label = rec.get("label")
        items.append(LabeledImage((path.parent / image).resolve(), rid, None if label is None else str(label),
                                  rec.get("split"), {**extra, **attrs}))
    if not items:
        raise DataError(f"manifest {path} lists no images")
    classes = sorted({it.label for it in items if it.label is not None})
    return Dataset(path.stem, str(path), items, classes)


# ---------------------------------------------------------------------------------------------------------------
# Task files


class TaskKind(str, enum.Enum):
    """How a task makes its (image, image, text) trials."""

    groups = "groups"  # images filtered into named groups; [[pairs]] say which text holds for which groups
    attributes = "attributes"  # per-image attribute sets; the text lists what each image has that the other lacks
    texts = "texts"  # image pairs and their difference texts from a comparatives JSONL (kind "pairs")


TASK_KEYS = ("name", "kind", "description", "manifest", "folder", "dataset", "split", "where", "groups", "pairs",
             "attributes", "exclude", "rename", "template", "empty", "comparatives")


@dataclass
class Trial:
    first: int  # index into Task.items: the image shown first
    second: int
    text: str
    holds: bool  # whether `text` is true for (first, second)


@dataclass
class Task:
    name: str
    kind: TaskKind
    path: Path
    sha256: str
    dataset: Dataset
    items: list[LabeledImage]  # after split/where filtering
    split: str | None
    groups: dict[str, list[int]] = field(default_factory=dict)
    pairs: list[dict] = field(default_factory=list)
    attribute_sets: list[frozenset] = field(default_factory=list)
    template: str = ""
    empty: str = "none"
    records: list[tuple[int, int, str]] = field(default_factory=list)  # texts kind: (first, second, text)

    def summary(self) -> dict:
        out = {"name": self.name, "kind": self.kind.value, "file": str(self.path), "sha256": self.sha256,
               "dataset": self.dataset.source, "split": self.split, "images": len(self.items)}
        if self.groups:
            out["groups"] = {k: len(v) for k, v in self.groups.items()}
        if self.records:
            out["records"] = len(self.records)
        return out


def _resolve_path(value: str, task_dir: Path, data_root: Path | None, key: str, task_path: Path) -> str:
    if DATA_ROOT_MARK in value:
        if data_root is None:
            raise DataError(f"{task_path}: {key} = {value!r} reads from the data root; pass --data-root DIR")
        return value.replace(DATA_ROOT_MARK, str(Path(data_root).expanduser()))
    return str((task_dir / value).expanduser()) if not Path(value).expanduser().is_absolute() else value


def _matches(item: LabeledImage, conditions: dict) -> bool:
    for key, allowed in conditions.items():
        values = allowed if isinstance(allowed, list) else [allowed]
        if item.value(key) not in values:
            return False
    return True


def _check_conditions(conditions, where: str, task_path: Path) -> dict:
    if not isinstance(conditions, dict):
        raise DataError(f"{task_path}: {where} must be a table of attribute = value (or list of values)")
    for key, allowed in conditions.items():
        if isinstance(allowed, dict) or (isinstance(allowed, list) and not allowed):
            raise DataError(f"{task_path}: {where}.{key} must be a value or a non-empty list of values")
    return conditions


def _attribute_set(item: LabeledImage, keys: list[str], exclude: set, rename: dict) -> frozenset:
    out = set()
    for key in keys:
        value = item.value(key)
        if value is None:
            continue
        for v in value if isinstance(value, list) else [value]:
            if str(v) not in exclude:
                out.add(str(rename.get(str(v), v)))
    return frozenset(out)


def load_task(path: str | Path, data_root: str | Path | None = None) -> Task:
    """Read and check a task TOML, load its images and resolve its groups (see docs/evaluation.md)."""
    from .config import load_toml

    path = Path(path).expanduser()
    raw = load_toml(path, what="task")
    unknown = sorted(set(raw) - set(TASK_KEYS))
    if unknown:
        raise DataError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(TASK_KEYS)}")
    name = str(raw.get("name") or path.stem)
    try:
        kind = TaskKind(raw.get("kind", ""))
    except ValueError:
        raise DataError(f"{path}: kind = {raw.get('kind')!r} is not one of "
                        f"{', '.join(k.value for k in TaskKind)}") from None
    sources = [k for k in ("manifest", "folder", "dataset") if raw.get(k)]
    if len(sources) != 1:
        raise DataError(f"{path}: give exactly one image source (manifest, folder or dataset); found "
                        f"{', '.join(sources) or 'none'}")
    source = sources[0]
    value = str(raw[source])
    if source == "dataset" and value.lower().removeprefix("torchvision:") in NAMED_DATASETS:
        dataset = load_dataset(value, data_root)
    else:
        resolved = _resolve_path(value, path.parent, Path(data_root) if data_root else None, source, path)
        if not Path(resolved).exists():
            raise DataError(f"{path}: {source} {resolved} not found")
        dataset = load_dataset(resolved)
    split = raw.get("split")
    items = dataset.in_split(split) if split else list(dataset.items)
    where = _check_conditions(raw.get("where", {}), "where", path)
    items = [it for it in items if _matches(it, where)]
    if not items:
        raise DataError(f"{path}: no images left after split = {split!r} and [where] {where}")
    task = Task(name, kind, path, sha256_file(path), dataset, items, split)
    if kind == TaskKind.groups:
        _load_groups(task, raw)
    elif kind == TaskKind.attributes:
        _load_attributes(task, raw)
    else:
        _load_texts(task, raw, data_root)
    return task


def _load_groups(task: Task, raw: dict) -> None:
    path = task.path
    groups = raw.get("groups")
    pairs = raw.get("pairs")
    if not isinstance(groups, dict) or not groups:
        raise DataError(f"{path}: a groups task needs [groups.NAME] tables")
    if not isinstance(pairs, list) or not pairs:
        raise DataError(f"{path}: a groups task needs at least one [[pairs]] entry (first, second, text)")
    for gname, cond in groups.items():
        _check_conditions(cond, f"groups.{gname}", path)
        members = [i for i, it in enumerate(task.items) if _matches(it, cond)]
        if not members:
            raise DataError(f"{path}: group {gname!r} is empty: no image in split {task.split!r} matches {cond}")
        task.groups[gname] = members
    for n, pair in enumerate(pairs, start=1):
        if not isinstance(pair, dict):
            raise DataError(f"{path}: pairs entry {n} must be a table with first, second, text")
        extra = sorted(set(pair) - {"first", "second", "text", "reverse"})
        if extra:
            raise DataError(f"{path}: pairs entry {n}: unknown key(s) {', '.join(extra)}; "
                            "valid keys: first, second, text, reverse")
        for key in ("first", "second"):
            if pair.get(key) not in task.groups:
                raise DataError(f"{path}: pairs entry {n} names unknown group {pair.get(key)!r}; "
                                f"groups: {', '.join(task.groups)}")
        text = " ".join(str(pair.get("text") or "").split())
        if not text:
            raise DataError(f"{path}: pairs entry {n} has no text")
        reverse = " ".join(str(pair.get("reverse") or "").split())
        if not reverse:
            from .attributes import expand_attribute

            # A sentence of three or more words comes back with "first" and "second" swapped.
            reverse = expand_attribute(text).reverse
        task.pairs.append({"first": pair["first"], "second": pair["second"], "text": text, "reverse": reverse})


def _load_attributes(task: Task, raw: dict) -> None:
    path = task.path
    keys = raw.get("attributes")
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise DataError(f"{path}: an attributes task needs attributes = [\"key\", ...]")
    template = str(raw.get("template") or "")
    if "{first}" not in template or "{second}" not in template:
        raise DataError(f"{path}: template must contain {{first}} and {{second}}, got {template!r}")
    exclude = {str(x) for x in raw.get("exclude", [])}
    rename = {str(k): str(v) for k, v in (raw.get("rename") or {}).items()}
    task.template, task.empty = template, str(raw.get("empty", "none"))
    task.attribute_sets = [_attribute_set(it, keys, exclude, rename) for it in task.items]
    if len(set(task.attribute_sets)) < 2:
        raise DataError(f"{path}: every image has the same attribute set for {keys}; no pair differs")


def _load_texts(task: Task, raw: dict, data_root) -> None:
    path = task.path
    if not raw.get("comparatives"):
        raise DataError(f"{path}: a texts task needs comparatives = \"FILE.jsonl\" (pairs of image ids and texts)")
    comp = Path(_resolve_path(str(raw["comparatives"]), path.parent, Path(data_root) if data_root else None,
                              "comparatives", path))
    by_id = {it.id: i for i, it in enumerate(task.items)}
    for lineno, rec in read_jsonl(comp, what="comparatives file"):
        if rec.get("kind", "pairs") != "pairs":
            raise DataError(f"{comp}:{lineno}: kind {rec.get('kind')!r}; a texts task reads kind \"pairs\" records")
        text = " ".join(str(rec.get("text") or "").split())
        if not text:
            continue
        ids = [str(rec.get("first")), str(rec.get("second"))]
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise DataError(f"{comp}:{lineno}: image id {missing[0]!r} is not in the task's images "
                            f"({task.dataset.source}, split {task.split!r})")
        if ids[0] != ids[1]:
            task.records.append((by_id[ids[0]], by_id[ids[1]], text))
    if not task.records:
        raise DataError(f"{comp}: no usable records (kind \"pairs\" with first, second and text)")


def sample_trials(task: Task, seed: int, n: int) -> tuple[list[Trial], int]:
    """`n` trials for one seed, and how many drawn pairs were skipped (attribute pairs with nothing to tell apart).

    Each pair is shown in a random order with, at random, its forward or reverse text; the text's truth for
    the shown order is recorded, so a model that always says "holds" scores 50%.
    """
    rng = random.Random(f"pcclip-rank|{task.name}|{seed}")
    trials: list[Trial] = []
    skipped = 0
    if task.kind == TaskKind.texts:
        chosen = rng.sample(task.records, n) if n <= len(task.records) else \
            [rng.choice(task.records) for _ in range(n)]
        for a, b, text in chosen:
            swap = rng.random() < 0.5
            trials.append(Trial(b, a, text, False) if swap else Trial(a, b, text, True))
        return trials, 0
    attempts = 0
    limit = 50 * n + 1000
    while len(trials) < n:
        attempts += 1
        if attempts > limit:
            raise DataError(f"{task.path}: could only draw {len(trials)} of {n} usable pairs; "
                            "the groups or attribute sets are too uniform")
        if task.kind == TaskKind.groups:
            pair = rng.choice(task.pairs)
            a, b = rng.choice(task.groups[pair["first"]]), rng.choice(task.groups[pair["second"]])
            if a == b:
                continue
            forward, reverse = pair["text"], pair["reverse"]
        else:
            a, b = rng.sample(range(len(task.items)), 2)
            only_a = task.attribute_sets[a] - task.attribute_sets[b]
            only_b = task.attribute_sets[b] - task.attribute_sets[a]
            if not only_a and not only_b:
                skipped += 1
                continue
            forward = task.template.format(first=_join(only_a, task.empty), second=_join(only_b, task.empty))
            reverse = task.template.format(first=_join(only_b, task.empty), second=_join(only_a, task.empty))
        a_first = rng.random() < 0.5
        use_reverse = rng.random() < 0.5
        # forward holds when a is shown first; reverse holds when b is.
        text = reverse if use_reverse else forward
        first, second = (a, b) if a_first else (b, a)
        trials.append(Trial(first, second, text, a_first != use_reverse))
    return trials, skipped


def _join(values, empty: str) -> str:
    return ", ".join(sorted(values)) if values else empty


def check_seeds(seeds: int, pairs: int) -> None:
    if seeds < 1:
        raise PcclipError(f"--seeds must be at least 1, got {seeds}")
    if pairs < 1:
        raise PcclipError(f"--pairs must be at least 1, got {pairs}")


def clip_for(model):
    """A LoadedClip from a SPEC string (loaded now, after the caller checked its inputs) or an already loaded one."""
    if isinstance(model, str):
        from .models import load_clip

        return load_clip(model)
    return model
