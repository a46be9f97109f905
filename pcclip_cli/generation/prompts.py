"""Prompt templates for `generate`: files in prompts/ (or any path) with named placeholders, checked strictly.

A prompt file is TOML with `kind` (pairs, classes, descriptions, or judge for the description judge), `template`, and optionally `description`
and `stop` (strings at which a completion is cut). A `.txt` file is a bare template for the kind asked for.
Placeholders are `{name}`; literal braces are written `{{` and `}}`. A template must use every placeholder of
its kind and no other, so a typo fails before any LLM call rather than producing a million useless texts.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.paths import PROMPTS_DIR

# The placeholders each kind of item provides to its template.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "pairs": ("first_caption", "second_caption"),
    "classes": ("first", "second"),
    "descriptions": ("class_name",),
    # An LLM judge's question about one class description (`pcclip analyse-descriptions --judge`).
    "judge": ("class_name", "description"),
}
DEFAULT_PROMPT = {"pairs": "coco", "classes": "classes", "descriptions": "descriptions"}
DEFAULT_STOP = ("\nQ:",)
_NOT_PROMPTS = {"attributes", "description_lexicon", "filter_rules", "order_swap", "paper_figures", "vocabulary"}


@dataclass(frozen=True)
class Prompt:
    name: str
    kind: str
    template: str
    stop: tuple[str, ...] = DEFAULT_STOP
    description: str = ""
    source: str = ""
    placeholders: tuple[str, ...] = field(default=())

    @property
    def sha256(self) -> str:
        """Identifies what the LLM was asked: the template and the stop strings, not the file's comments."""
        body = self.template + "\0" + "\0".join(self.stop)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()

    def render(self, **values: str) -> str:
        missing = [p for p in self.placeholders if p not in values]
        if missing:
            raise PcclipError(f"prompt {self.name!r} needs a value for {', '.join(missing)}")
        return self.template.format(**{p: values[p] for p in self.placeholders})


def _fields(template: str, where: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DataError(f"{where}: malformed template ({exc}); write literal braces as {{{{ and }}}}") from None
    names = []
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            raise DataError(f"{where}: placeholder {{{name}}} must be a plain name such as {{first_caption}}")
        names.append(name)
    return names


def make_prompt(name: str, kind: str, template: str, *, stop=DEFAULT_STOP, description: str = "",
                source: str = "") -> Prompt:
    """Validate `template` against the placeholders of `kind`: an unknown or missing one is an error."""
    if kind not in PLACEHOLDERS:
        raise DataError(f"{source or name}: kind {kind!r} is not one of {', '.join(PLACEHOLDERS)}")
    if not isinstance(template, str) or not template.strip():
        raise DataError(f"{source or name}: empty template")
    where = source or f"prompt {name!r}"
    used = _fields(template, where)
    allowed = PLACEHOLDERS[kind]
    unknown = sorted(set(used) - set(allowed))
    if unknown:
        raise DataError(f"{where}: unknown placeholder {{{unknown[0]}}} for kind {kind}; "
                        f"valid placeholders: {', '.join('{' + a + '}' for a in allowed)}")
    missing = [a for a in allowed if a not in used]
    if missing:
        raise DataError(f"{where}: template never uses {{{missing[0]}}}; a {kind} prompt must use "
                        f"{', '.join('{' + a + '}' for a in allowed)}")
    if isinstance(stop, str):
        stop = (stop,)
    if not all(isinstance(s, str) and s for s in stop):
        raise DataError(f"{where}: stop must be a list of non-empty strings")
    return Prompt(name, kind, template, tuple(stop), description, source, allowed)


def list_prompts() -> list[dict]:
    """The prompts shipped in prompts/: name, kind, description."""
    rows = []
    for path in sorted(PROMPTS_DIR.glob("*.toml")):
        if path.stem in _NOT_PROMPTS:
            continue
        p = load_prompt(path.stem)
        rows.append({"name": p.name, "kind": p.kind, "description": p.description})
    return rows


def load_prompt(spec: str | Path, kind: str | None = None) -> Prompt:
    """A shipped prompt by name (`coco`, `cub`, `shapes`, ...) or a .toml/.txt file by path.

    `kind`, when given, must match the prompt's kind (a .txt file takes it from here).
    """
    from pcclip_cli.core.config import load_toml

    spec_s = str(spec)
    path = Path(spec_s).expanduser()
    builtin = PROMPTS_DIR / f"{spec_s}.toml"
    if "/" not in spec_s and not spec_s.endswith((".toml", ".txt")) and spec_s not in _NOT_PROMPTS:
        if not builtin.exists():
            names = [r for r in sorted(p.stem for p in PROMPTS_DIR.glob("*.toml")) if r not in _NOT_PROMPTS]
            raise PcclipError(f"unknown prompt {spec_s!r}; shipped prompts: {', '.join(names)}; "
                              "or give a path to a .toml or .txt file")
        path = builtin
    elif not path.exists():
        raise DataError(f"prompt file not found: {path}")
    if path.suffix == ".txt":
        if kind is None:
            raise PcclipError(f"{path}: a .txt prompt needs --kind to say which placeholders it gets")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}: not valid UTF-8") from None
        # Editors add a final newline; a completion prompt should end right after "A:".
        prompt = make_prompt(path.stem, kind, text.rstrip("\n"), source=str(path))
    else:
        data = load_toml(path, what="prompt")
        valid = {"kind", "template", "stop", "description"}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise DataError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}")
        if "template" not in data or "kind" not in data:
            raise DataError(f"{path}: a prompt file needs `kind` and `template`")
        prompt = make_prompt(path.stem, data["kind"], data["template"], stop=data.get("stop", DEFAULT_STOP),
                             description=data.get("description", ""), source=str(path))
    if kind is not None and prompt.kind != kind:
        raise PcclipError(f"prompt {prompt.name!r} is for kind {prompt.kind}, not {kind}; "
                          f"use --prompt {DEFAULT_PROMPT[kind]} or another {kind} prompt")
    return prompt
