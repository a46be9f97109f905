"""What `pcclip generate` is asked for: its settings (GenerateConfig) and the items they name (a Plan per kind).

A plan streams its shard's items as Requests (key, rendered prompt, the two captions or class names) without
materialising them, so all ordered pairs of many captions cost no memory; keys are `"A -> B"` for pairs and
classes and `"NAME #k"` for descriptions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.data.pairs import Shard, check_plan, iter_pairs, parse_shard, plan_size
from pcclip_cli.llm.base import Request


class Kind(str, enum.Enum):
    pairs = "pairs"
    classes = "classes"
    descriptions = "descriptions"


@dataclass
class GenerateConfig:
    llm: str
    out: Path | None  # None: keep records in memory (library use)
    kind: Kind = Kind.pairs
    captions: Path | None = None  # kind pairs: captions.jsonl
    classes: Path | None = None  # kind classes/descriptions: names (.txt) or confused pairs (.jsonl)
    pairs: int | None = None  # random ordered pairs (seeded); None: all ordered pairs
    images: int | None = None  # use only the first N images of the captions file
    seed: int = 0
    prompt: str | None = None  # name or path; default per kind (coco, classes, descriptions)
    max_tokens: int = 80
    temperature: float = 0.0
    batch_size: int = 8
    shard: str | Shard = "0/1"
    n: int = 1  # descriptions per class
    backend_options: dict = field(default_factory=dict)

    def __post_init__(self):
        self.kind = Kind(self.kind)
        if not isinstance(self.shard, Shard):
            self.shard = parse_shard(self.shard)
        if self.batch_size < 1:
            raise PcclipError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.n < 1:
            raise PcclipError(f"--n must be at least 1, got {self.n}")
        if self.kind is Kind.pairs:
            if self.captions is None:
                raise PcclipError("--kind pairs needs --captions captions.jsonl")
            if self.classes is not None:
                raise PcclipError("--classes is for --kind classes or descriptions; pairs come from --captions")
        else:
            if self.classes is None:
                raise PcclipError(f"--kind {self.kind.value} needs --classes FILE (class names one per line, "
                                  "or a JSONL of confused pairs with first/second)")
            if self.images is not None:
                raise PcclipError("--images applies to --kind pairs only")
        if self.kind is not Kind.descriptions and self.n != 1:
            raise PcclipError("--n applies to --kind descriptions only")
        if self.kind is Kind.descriptions and self.pairs is not None:
            raise PcclipError("--pairs does not apply to --kind descriptions; use --n for descriptions per class")
        if self.images is not None and self.images < 2:
            raise PcclipError(f"--images must be at least 2, got {self.images}")


@dataclass
class Plan:
    """What to generate: the items of this shard, streamed, and how many there are."""

    total: int
    items: Callable[[], Iterator[Request]]
    source: str


def pair_key(first: str, second: str) -> str:
    return f"{first} -> {second}"


def description_key(name: str, k: int) -> str:
    return f"{name} #{k}"


def pairs_plan(cfg: GenerateConfig, prompt) -> Plan:
    from pcclip_cli.data.records import read_captions

    records = read_captions(cfg.captions)
    if cfg.images is not None:
        if cfg.images > len(records):
            raise DataError(f"--images {cfg.images} but {cfg.captions} has only {len(records)} images")
        records = records[: cfg.images]
    if len(records) < 2:
        raise DataError(f"captions file {cfg.captions} has {len(records)} image; pairs need at least 2")
    check_plan(len(records), cfg.pairs)

    def items() -> Iterator[Request]:
        for _, i, j in iter_pairs(len(records), cfg.pairs, cfg.seed, cfg.shard):
            a, b = records[i], records[j]
            yield Request(pair_key(a.id, b.id), prompt.render(first_caption=a.caption, second_caption=b.caption),
                          "pairs", a.id, b.id, a.caption, b.caption, a.attributes or None, b.attributes or None)

    total = cfg.shard.size(plan_size(len(records), cfg.pairs))
    return Plan(total, items, f"{len(records)} images")


def read_class_names(path: Path) -> list[str]:
    """Class names, one per line (blank lines and # comments skipped), or the distinct `class`, `name` or `label`
    fields of a JSONL (so a classification manifest such as a shapes world's classes/colour.jsonl works)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"classes file not found: {path}")
    names: list[str] = []
    if path.suffix == ".jsonl":
        from pcclip_cli.core.io import read_jsonl

        for lineno, rec in read_jsonl(path, what="classes file"):
            name = rec.get("class", rec.get("name", rec.get("label")))
            if not isinstance(name, str) or not name.strip():
                raise DataError(f"{path}:{lineno}: expected a \"class\", \"name\" or \"label\" field naming "
                                "the class")
            names.append(" ".join(name.split()))
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{path}: not valid UTF-8") from None
        names = [" ".join(ln.split()) for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    unique = list(dict.fromkeys(names))
    if not unique:
        raise DataError(f"classes file {path} names no classes")
    return unique


def read_class_pairs(path: Path) -> list[tuple[str, str]] | None:
    """Ordered class pairs from a JSONL of {"first", "second"} records (as `classify` writes), or None if the
    file is a list of names."""
    from pcclip_cli.core.io import read_jsonl

    path = Path(path)
    if path.suffix != ".jsonl" or not path.exists():
        return None
    pairs = []
    for lineno, rec in read_jsonl(path, what="class pairs file"):
        if "first" not in rec and "second" not in rec:
            return None
        a, b = rec.get("first"), rec.get("second")
        if not (isinstance(a, str) and a.strip() and isinstance(b, str) and b.strip()):
            raise DataError(f"{path}:{lineno}: a class pair needs non-empty \"first\" and \"second\" names")
        if a.strip() == b.strip():
            raise DataError(f"{path}:{lineno}: a class cannot be compared with itself ({a!r})")
        pairs.append((" ".join(a.split()), " ".join(b.split())))
    if not pairs:
        raise DataError(f"class pairs file {path} is empty")
    return list(dict.fromkeys(pairs))


def _class_pairs_items(pairs: list[tuple[str, str]], prompt, shard: Shard) -> Iterator[Request]:
    for pos in range(shard.index, len(pairs), shard.count):
        a, b = pairs[pos]
        yield Request(pair_key(a, b), prompt.render(first=a, second=b), "classes", a, b)


def classes_plan(cfg: GenerateConfig, prompt) -> Plan:
    explicit = read_class_pairs(cfg.classes)
    if explicit is not None:
        if cfg.pairs is not None:
            raise PcclipError("--pairs samples pairs from a list of names; the classes file already lists pairs")
        return Plan(cfg.shard.size(len(explicit)), lambda: _class_pairs_items(explicit, prompt, cfg.shard),
                    f"{len(explicit)} class pairs")
    names = read_class_names(cfg.classes)
    if len(names) < 2:
        raise DataError(f"classes file {cfg.classes} names {len(names)} class; class pairs need at least 2")
    check_plan(len(names), cfg.pairs, "classes")

    def items() -> Iterator[Request]:
        for _, i, j in iter_pairs(len(names), cfg.pairs, cfg.seed, cfg.shard):
            yield Request(pair_key(names[i], names[j]), prompt.render(first=names[i], second=names[j]),
                          "classes", names[i], names[j])

    return Plan(cfg.shard.size(plan_size(len(names), cfg.pairs)), items, f"{len(names)} classes")


def _descriptions_items(names: list[str], n: int, prompt, shard: Shard) -> Iterator[Request]:
    for pos in range(shard.index, len(names) * n, shard.count):
        name, k = names[pos // n], pos % n
        yield Request(description_key(name, k), prompt.render(class_name=name), "descriptions", name, None, n=k)


def descriptions_plan(cfg: GenerateConfig, prompt) -> Plan:
    names = read_class_names(cfg.classes)
    return Plan(cfg.shard.size(len(names) * cfg.n), lambda: _descriptions_items(names, cfg.n, prompt, cfg.shard),
                f"{len(names)} classes x {cfg.n}")
