"""The import graph of pcclip_cli: dependencies run one way (no cycle, lazy imports included), no module reaches
into another's private names, and library code never imports the CLI's libraries; the device is an argument,
never an environment variable the CLI writes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pcclip_cli"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(current: str, is_package: bool, level: int, module: str | None) -> str:
    base = current.split(".") if is_package else current.split(".")[:-1]
    if level:
        base = base[: len(base) - (level - 1)]
        return ".".join(base + ([module] if module else []))
    return module or ""


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import in the file, at any depth (lazy ones too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("pcclip_cli")]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node.level, node.module)
            if not target.startswith("pcclip_cli"):
                continue
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            found.append((target, [n for n in names if f"{target}.{n}" not in modules]))
            found += [(m, []) for m in submodules]
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, _ in _imports(name, path, modules):
            # Importing a.b.c runs a/__init__ and a/b/__init__ first: those are dependencies too.
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                dep = ".".join(parts[:i])
                if dep in modules and dep != name and not name.startswith(dep + "."):
                    graph[name].add(dep)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_import_graph_has_no_cycle():
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_detector_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_private_names_of_another():
    modules = _modules()
    offences = []
    for name, path in modules.items():
        for target, names in _imports(name, path, modules):
            offences += [f"{name} takes {n} from {target}" for n in names if n.startswith("_") and not n.startswith("__") and target != name]
    assert not offences, offences


def test_library_never_imports_typer_or_rich():
    offences = []
    for name, path in _modules().items():
        if name.startswith("pcclip_cli.cli"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offences += [f"{name} imports {m}" for m in mods if m.split(".")[0] in ("typer", "rich", "click")]
    assert not offences, offences


def test_import_depth_is_reported():
    """The longest import chain stays short enough to read (docs/architecture.md quotes it)."""
    graph = _graph()
    depth: dict[str, int] = {}

    def longest(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((longest(n) for n in graph[node]), default=0)
        return depth[node]

    deepest = max(longest(n) for n in graph)
    assert 2 <= deepest <= 20, deepest


def _package(module: str) -> str:
    """The top-level package a module belongs to ('core', 'data', ..., or the module itself: 'models', 'demo')."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# Which packages each package may never import, lazy imports included. The pipeline runs
# core < data < clip < llm < generation < filtering < training < models/finetune < evaluation < retrieval,
# alignment < demo < cli (alignment scores an LLM with the evaluation's embeddings, so it sits above them).
MODEL_CODE = {"clip", "llm", "training", "models", "finetune"}
ABOVE_TRAINING = {"models", "finetune", "evaluation", "retrieval", "alignment", "demo", "cli"}
FORBIDDEN = {
    "core": {"data", "clip", "llm", "generation", "filtering"} | {"training"} | ABOVE_TRAINING,
    "data": MODEL_CODE | {"generation", "filtering"} | ABOVE_TRAINING,
    "clip": {"llm", "generation", "filtering", "training"} | ABOVE_TRAINING,
    "llm": {"generation", "filtering", "training"} | ABOVE_TRAINING,
    "generation": {"filtering", "training"} | ABOVE_TRAINING,
    "filtering": {"training"} | ABOVE_TRAINING,
    "training": ABOVE_TRAINING,
    "models": {"finetune", "evaluation", "retrieval", "alignment", "demo", "cli"},
    "evaluation": {"retrieval", "alignment", "demo", "cli"},
    "retrieval": {"alignment", "demo", "cli"},
    "alignment": {"retrieval", "demo", "cli"},
    "demo": {"cli"},
}


def _package_offences(graph: dict[str, set[str]]) -> list[str]:
    offences = []
    for name, deps in graph.items():
        banned = FORBIDDEN.get(_package(name), set())
        offences += [f"{name} imports {d}" for d in sorted(deps) if _package(d) in banned]
    return sorted(offences)


def test_packages_import_only_downward():
    offences = _package_offences(_graph())
    assert not offences, "imports against the pipeline's direction:\n" + "\n".join(offences)


def test_package_rules_catch_a_planted_upward_import():
    graph = {"pcclip_cli.training.trainer": {"pcclip_cli.models", "pcclip_cli.core.io"},
             "pcclip_cli.core.io": {"pcclip_cli.data.records"},
             "pcclip_cli.evaluation.ranking": {"pcclip_cli.data.attributes"}}
    assert _package_offences(graph) == ["pcclip_cli.core.io imports pcclip_cli.data.records",
                                        "pcclip_cli.training.trainer imports pcclip_cli.models"]


# The device travels as a `device=` argument: only core/device.py (the resolver, with its documented
# $PCCLIP_DEVICE fallback for library users) reads the variable, and the CLI never writes the environment.
DEVICE_RESOLVER = "pcclip_cli.core.device"
DEVICE_ENV_USE = re.compile(r"PCCLIP_DEVICE|DEVICE_ENV|environ\s*\[[^\]]*DEVICE")
ENV_WRITE = re.compile(r"environ\s*\[[^\]]*\]\s*=(?!=)|environ\.(setdefault|update|pop)\(|putenv\(|unsetenv\(|"
                       r"del\s+os\.environ")


def _text_offences(sources: dict[str, str], pattern: re.Pattern) -> list[str]:
    return [f"{name}:{n}: {line.strip()}" for name, text in sorted(sources.items())
            for n, line in enumerate(text.splitlines(), start=1) if pattern.search(line)]


def _sources(keep) -> dict[str, str]:
    return {name: path.read_text(encoding="utf-8") for name, path in _modules().items() if keep(name)}


def test_only_the_resolver_reads_the_device_from_the_environment():
    library = _sources(lambda n: not n.startswith("pcclip_cli.cli") and n != DEVICE_RESOLVER)
    offences = _text_offences(library, DEVICE_ENV_USE)
    assert not offences, "the device is a device= argument, not an environment variable:\n" + "\n".join(offences)


def test_the_cli_never_writes_the_environment():
    offences = _text_offences(_sources(lambda n: n.startswith("pcclip_cli.cli")), ENV_WRITE)
    assert not offences, "the CLI passes its options as arguments:\n" + "\n".join(offences)


def test_device_rules_catch_planted_lines():
    planted = {"pcclip_cli.llm.x": 'dev = os.environ.get("PCCLIP_DEVICE")\nvisible = os.environ.get("CUDA_VISIBLE_DEVICES")',
               "pcclip_cli.retrieval.y": "from pcclip_cli.core.device import DEVICE_ENV",
               "pcclip_cli.clip.z": 'choice = os.environ["MY_DEVICE"]'}
    assert _text_offences(planted, DEVICE_ENV_USE) == [
        "pcclip_cli.clip.z:1: choice = os.environ[\"MY_DEVICE\"]",
        "pcclip_cli.llm.x:1: dev = os.environ.get(\"PCCLIP_DEVICE\")",
        "pcclip_cli.retrieval.y:1: from pcclip_cli.core.device import DEVICE_ENV"]
    cli = {"pcclip_cli.cli.a": 'os.environ["PCCLIP_DEVICE"] = device.value\nif os.environ["RANK"] == "0": pass',
           "pcclip_cli.cli.b": 'os.environ.setdefault("X", "1")\nrank = int(os.environ.get("RANK", "0"))'}
    assert _text_offences(cli, ENV_WRITE) == ["pcclip_cli.cli.a:1: os.environ[\"PCCLIP_DEVICE\"] = device.value",
                                             "pcclip_cli.cli.b:1: os.environ.setdefault(\"X\", \"1\")"]
