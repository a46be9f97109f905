"""Benchmark task files (groups, attributes, texts) and their trials; labelled images come from `datasets`."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.io import sha256_file

from .datasets.base import NAMED_DATASETS, Dataset, LabeledImage, load_dataset

DATA_ROOT_MARK = "{data_root}"


# ---------------------------------------------------------------------------------------------------------------
# Task files

TEMPLATE_FIELDS = ("first", "second")


def _check_template(template: str, path: Path, what: str) -> None:
    """A template renders with str.format and exactly {first} and {second}: both present, nothing else (a
    stray {colour} would otherwise be a KeyError when trials are drawn); literal braces are written {{ }}."""
    import string

    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise DataError(f"{path}: {what} {template!r} is not a valid template ({exc}); write a literal brace "
                        "as {{ or }}") from None
    for name in fields:
        if name not in TEMPLATE_FIELDS:
            raise DataError(f"{path}: {what} {template!r} has the unknown placeholder {{{name}}}; only {{first}} "
                            "and {second} are filled in (write a literal brace as {{ or }})")
    if not all(f in fields for f in TEMPLATE_FIELDS):
        raise DataError(f"{path}: {what} must contain {{first}} and {{second}}, got {template!r}")


class TaskKind(str, enum.Enum):
    """How a task makes its (image, image, text) trials."""

    groups = "groups"  # images filtered into named groups; [[pairs]] say which text holds for which groups
    attributes = "attributes"  # per-image attribute sets; the text lists what each image has that the other lacks
    texts = "texts"  # image pairs and their difference texts from a comparatives JSONL (kind "pairs")


TASK_KEYS = ("name", "kind", "description", "manifest", "folder", "dataset", "split", "where", "groups", "pairs",
             "attributes", "exclude", "rename", "template", "paraphrases", "empty", "comparatives")


@dataclass
class Trial:
    first: int  # index into Task.items: the image shown first
    second: int
    text: str
    holds: bool  # whether `text` is true for (first, second)
    # The same statement in the task's held-out paraphrases (same truth value, same images), in the file's order.
    paraphrases: tuple[str, ...] = ()


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
    templates: list[str] = field(default_factory=list)  # attributes kind: the held-out paraphrases of `template`
    empty: str = "none"
    records: list[tuple[int, int, str]] = field(default_factory=list)  # texts kind: (first, second, text)

    def summary(self) -> dict:
        out = {"name": self.name, "kind": self.kind.value, "file": str(self.path), "sha256": self.sha256,
               "dataset": self.dataset.source, "split": self.split, "images": len(self.items)}
        if self.groups:
            out["groups"] = {k: len(v) for k, v in self.groups.items()}
        if self.records:
            out["records"] = len(self.records)
        if self.paraphrase_count:
            out["paraphrases"] = self.paraphrase_count
        return out

    @property
    def paraphrase_count(self) -> int:
        if self.kind == TaskKind.attributes:
            return len(self.templates)
        return min((len(p["paraphrases"]) for p in self.pairs), default=0)


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


def load_task(path: str | Path, data_root: str | Path | None = None, *, split: str | None = "task") -> Task:
    """Read and check a task TOML, load its images and resolve its groups (see docs/evaluation.md). `split`
    "task" keeps the task file's own split; None (every image) or a split name overrides it."""
    from pcclip_cli.core.config import load_toml

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
    split = raw.get("split") if split == "task" else split
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
        extra = sorted(set(pair) - {"first", "second", "text", "reverse", "paraphrases"})
        if extra:
            raise DataError(f"{path}: pairs entry {n}: unknown key(s) {', '.join(extra)}; "
                            "valid keys: first, second, text, reverse, paraphrases")
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
        paraphrases = _read_paraphrases(pair.get("paraphrases", []), f"pairs entry {n}", path)
        if task.pairs and len(paraphrases) != len(task.pairs[0]["paraphrases"]):
            raise DataError(f"{path}: pairs entry {n} has {len(paraphrases)} paraphrases and entry 1 has "
                            f"{len(task.pairs[0]['paraphrases'])}; give every entry the same number")
        task.pairs.append({"first": pair["first"], "second": pair["second"], "text": text, "reverse": reverse,
                           "paraphrases": paraphrases})


def _read_paraphrases(raw, where: str, path: Path) -> list[tuple[str, str]]:
    """[[pairs.paraphrases]] tables: the same statement and its reverse in other words, scored as held-out
    phrasings (the benchmark's headline accuracy is their mean)."""
    if not isinstance(raw, list):
        raise DataError(f"{path}: {where}: paraphrases must be [[pairs.paraphrases]] tables with text and reverse")
    out = []
    for k, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or set(item) - {"text", "reverse"}:
            raise DataError(f"{path}: {where}, paraphrase {k}: give exactly text and reverse")
        text, reverse = (" ".join(str(item.get(key) or "").split()) for key in ("text", "reverse"))
        if not text or not reverse:
            raise DataError(f"{path}: {where}, paraphrase {k}: both text and reverse are needed (the reverse "
                            "swaps what the statement says about the two images)")
        out.append((text, reverse))
    return out


def _load_attributes(task: Task, raw: dict) -> None:
    path = task.path
    keys = raw.get("attributes")
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise DataError(f"{path}: an attributes task needs attributes = [\"key\", ...]")
    template = str(raw.get("template") or "")
    _check_template(template, path, "template")
    templates = raw.get("paraphrases", [])
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise DataError(f"{path}: paraphrases must be a list of templates like template")
    for t in templates:
        _check_template(t, path, "paraphrase template")
    task.templates = [" ".join(t.split()) for t in templates]
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
    from .comparatives import RecordKind, read_comparatives

    for rec in read_comparatives(comp, kinds=(RecordKind.pairs,), other_kinds="error"):
        if not rec.text:
            continue
        ids = [rec.first, rec.second]
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise DataError(f"{comp}:{rec.line}: image id {missing[0]!r} is not in the task's images "
                            f"({task.dataset.source}, split {task.split!r})")
        if ids[0] != ids[1]:
            task.records.append((by_id[ids[0]], by_id[ids[1]], rec.text))
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
            variants = pair["paraphrases"]
        else:
            a, b = rng.sample(range(len(task.items)), 2)
            only_a = task.attribute_sets[a] - task.attribute_sets[b]
            only_b = task.attribute_sets[b] - task.attribute_sets[a]
            if not only_a and not only_b:
                skipped += 1
                continue
            sa, sb = _join(only_a, task.empty), _join(only_b, task.empty)
            forward = task.template.format(first=sa, second=sb)
            reverse = task.template.format(first=sb, second=sa)
            variants = [(t.format(first=sa, second=sb), t.format(first=sb, second=sa)) for t in task.templates]
        a_first = rng.random() < 0.5
        use_reverse = rng.random() < 0.5
        # forward holds when a is shown first; reverse holds when b is.
        text = reverse if use_reverse else forward
        first, second = (a, b) if a_first else (b, a)
        trials.append(Trial(first, second, text, a_first != use_reverse,
                            tuple(r if use_reverse else f for f, r in variants)))
    return trials, skipped


def _join(values, empty: str) -> str:
    return ", ".join(sorted(values)) if values else empty


def check_seeds(seeds: int, pairs: int) -> None:
    if seeds < 1:
        raise PcclipError(f"--seeds must be at least 1, got {seeds}")
    if pairs < 1:
        raise PcclipError(f"--pairs must be at least 1, got {pairs}")
