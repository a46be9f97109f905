"""What a world directory holds for the world suite: its task files and class manifests, checked before a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError

# The shapes world's suite, as it has always run (its world.json lists one more class manifest, size).
SHAPES_TASKS = ("size", "colour", "attributes", "count")
SHAPES_CLASS_SETS = ("shape", "colour", "colour_shape")


@dataclass(frozen=True)
class WorldSuite:
    """What the world suite runs on one world: its task files and class manifests (names without suffix)."""

    root: Path
    meta: dict  # world.json
    kind: str  # shapes | produce | ...
    tasks: tuple[str, ...]  # tasks/NAME.toml
    class_sets: tuple[str, ...]  # classes/NAME.jsonl


def _listed(meta: dict, key: str, root: Path, folder: str, suffix: str) -> tuple[str, ...]:
    """The names world.json lists under `key` (paths like "tasks/size.toml"), or else the files in `folder`."""
    if meta.get(key):
        return tuple(Path(p).name.removesuffix(suffix) for p in meta[key])
    return tuple(p.name.removesuffix(suffix) for p in sorted((root / folder).glob(f"*{suffix}")))


def world_suite(world: str | Path) -> WorldSuite:
    """Read a world directory's world.json and check that every task file and class manifest it needs is there."""
    import json

    root = Path(world).expanduser()
    meta_path = root / "world.json"
    if not meta_path.exists():
        raise DataError(f"{root} is not a shapes world or a produce world (no world.json); build one with "
                        f"`pcclip data shapes {root}` or `pcclip data produce {root}`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path} is not valid JSON ({exc.msg}); rebuild the world") from None
    if not isinstance(meta, dict):
        raise DataError(f"{meta_path} does not hold a JSON object; rebuild the world")
    kind = meta.get("world", "shapes")  # shapes worlds predate the key
    if kind == "shapes":
        tasks, class_sets = SHAPES_TASKS, SHAPES_CLASS_SETS
    else:
        tasks = _listed(meta, "tasks", root, "tasks", ".toml")
        class_sets = _listed(meta, "class_manifests", root, "classes", ".jsonl")
    missing = [f"tasks/{t}.toml" for t in tasks if not (root / "tasks" / f"{t}.toml").exists()]
    missing += [f"classes/{c}.jsonl" for c in class_sets if not (root / "classes" / f"{c}.jsonl").exists()]
    missing += [] if (root / "captions.jsonl").exists() else ["captions.jsonl"]
    missing += [] if tasks else ["tasks/*.toml (none listed or present)"]
    missing += [] if class_sets else ["classes/*.jsonl (none listed or present)"]
    if missing:
        raise DataError(f"{kind} world {root} lacks {', '.join(missing)}; rebuild it with `pcclip data {kind}`")
    return WorldSuite(root, meta, kind, tasks, class_sets)
