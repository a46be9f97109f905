"""Attribute words ("larger", "blue") as the sentences rank and retrieve score: one expander, one cached table.

A bare word is filled into every template of a template set (prompts/queries/default.toml unless the user names
another); `ensemble_vectors` averages the sentences' normalised text embeddings and normalises again, as CLIP's
zero-shot prompt ensembles are. Three or more words are one sentence, used as given. `expand_attribute` gives
the single comparative sentence (and its reverse) that the paper's metrics score.

    ens = attribute_ensemble("blue")
    vec = ensemble_vector(clip, ens)          # (d,) unit vector
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.paths import PROMPTS_DIR


@dataclass(frozen=True)
class AttributeQuery:
    attribute: str  # what the user typed
    text: str  # "the first image has more of it" sentence
    reverse: str  # the same statement with the images swapped
    expanded: bool  # False when the user gave a full sentence


@functools.cache
def _table() -> dict:
    from pcclip_cli.core.config import load_toml

    return load_toml(PROMPTS_DIR / "attributes.toml")


def expand_attribute(attribute: str) -> AttributeQuery:
    """A bare word is expanded with prompts/attributes.toml; three or more words are taken as the sentence."""
    word = " ".join((attribute or "").split())
    if not word:
        raise PcclipError("empty attribute; give a word such as 'larger' or a full comparative sentence")
    if len(word.split()) >= 3:
        return AttributeQuery(word, word, _swap_first_second(word), expanded=False)
    table = _table()
    key = word.lower()
    pair = table["comparatives"].get(key)
    if pair:
        cmp, opp = pair
        return AttributeQuery(word, table["forward"].format(cmp=cmp), table["forward"].format(cmp=opp), True)
    cmp = key if key.endswith("er") or key.startswith(("more ", "less ")) else f"more {key}"
    return AttributeQuery(word, table["forward"].format(cmp=cmp), table["reverse"].format(cmp=cmp), True)


def _swap_first_second(sentence: str) -> str:
    marker = "\0"
    return (sentence.replace("first", marker).replace("second", "first").replace(marker, "second")
            .replace("First", marker).replace("Second", "First").replace(marker, "Second"))

QUERY_TEMPLATES_DIR = PROMPTS_DIR / "queries"
DEFAULT_TEMPLATES = "default"
PLACEHOLDERS = ("word", "cmp", "kind")
REQUIRED = ("word", "cmp")  # a template must name the attribute in one form or the other


@dataclass(frozen=True)
class QueryTemplates:
    """A validated template set: the templates in file order and the attribute-kind table."""

    name: str
    source: str
    templates: tuple[str, ...]
    kinds: dict

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "templates": len(self.templates)}


@dataclass(frozen=True)
class AttributeEnsemble:
    attribute: str  # what the user typed
    sentences: tuple[str, ...]  # the filled-in templates (one sentence when the query was a sentence)
    expanded: bool  # False when the user gave a full sentence
    templates: str  # the template set's name

    @property
    def text(self) -> str:
        """The first sentence: the comparative form for the shipped sets, shown where one line is wanted."""
        return self.sentences[0]


def _fields(template: str, where: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DataError(f"{where}: malformed template {template!r} ({exc}); write literal braces as {{{{ and }}}}") \
            from None
    names = set()
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conv:
            raise DataError(f"{where}: unknown placeholder {{{name}}} in {template!r}; "
                            f"use {{word}}, {{cmp}} or {{kind}}")
        names.add(name)
    return names


def make_templates(templates: list[str], *, name: str = "custom", source: str = "",
                   kinds: dict | None = None) -> QueryTemplates:
    """Check every template (each names the attribute with {word} or {cmp}, and uses no other placeholder)."""
    where = source or name
    if not templates:
        raise DataError(f"{where}: no query templates; give a list `templates = [...]` with at least one")
    for t in templates:
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"{where}: every query template must be a non-empty string, got {t!r}")
        if not _fields(t, where) & set(REQUIRED):
            raise DataError(f"{where}: template {t!r} has no {{word}} or {{cmp}} placeholder for the attribute")
    if kinds is not None and not (isinstance(kinds, dict) and all(isinstance(v, str) for v in kinds.values())):
        raise DataError(f"{where}: [kinds] must map attribute words to strings such as \"colour\"")
    kinds = kinds or {}
    return QueryTemplates(name, source, tuple(t.strip() for t in templates), {k.lower(): v for k, v in kinds.items()})


def _templates_from_toml(data: dict, where: str) -> list[str]:
    found = []
    if "templates" in data:
        found.append(data["templates"])
    for key, value in data.items():
        if key != "kinds" and isinstance(value, dict) and "templates" in value:
            found.append(value["templates"])
    if not found:
        raise DataError(f"{where}: no `templates = [...]` list (at the top or in a [group]); see "
                        f"{QUERY_TEMPLATES_DIR / 'default.toml'}")
    out = []
    for group in found:
        if not isinstance(group, list):
            raise DataError(f"{where}: `templates` must be a list of strings")
        out.extend(group)
    return out


def load_query_templates(spec: str | Path | None = None) -> QueryTemplates:
    """A shipped set by name (default, single-sentence) or a user's file (.toml, or .txt one per line)."""
    spec_s = DEFAULT_TEMPLATES if spec is None else str(spec)
    shipped = QUERY_TEMPLATES_DIR / f"{spec_s}.toml"
    if "/" not in spec_s and not spec_s.endswith((".toml", ".txt")) and shipped.exists():
        return _read_templates(str(shipped), spec_s, shipped.stat().st_mtime_ns)
    path = Path(spec_s).expanduser()
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in QUERY_TEMPLATES_DIR.glob("*.toml")))
        raise DataError(f"query templates not found: {spec_s}; give a .toml or .txt file, or one of: {names}")
    if path.is_dir():
        raise DataError(f"--query-templates takes a file, not a folder: {path}")
    # Cached by absolute path and modification time: the same name elsewhere, or an edited file, is read anew.
    return _read_templates(str(path.resolve()), path.stem, path.stat().st_mtime_ns, shown=spec_s)


@functools.cache
def _read_templates(path_s: str, name: str, mtime_ns: int, shown: str | None = None) -> QueryTemplates:
    from pcclip_cli.core.config import load_toml

    path, where = Path(path_s), shown or path_s
    if path.suffix == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{where}: not valid UTF-8") from None
        return make_templates([ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")],
                              name=name, source=where, kinds=load_query_templates().kinds)
    try:
        data = load_toml(path, what="query templates")
    except DataError as exc:
        raise DataError(str(exc).replace(path_s, where)) from None
    kinds = data.get("kinds")
    if kinds is None and path != QUERY_TEMPLATES_DIR / f"{DEFAULT_TEMPLATES}.toml":
        kinds = load_query_templates().kinds
    return make_templates(_templates_from_toml(data, where), name=name, source=where, kinds=kinds)


def attribute_forms(word: str) -> tuple[str, str]:
    """(plain adjective, comparative) of an attribute word: blue -> (blue, bluer), larger -> (large, larger)."""
    key = " ".join(word.lower().split())
    table = _table()["comparatives"]
    if key in table:
        cmp = table[key][0]
        if key == cmp:  # typed a comparative that has its own row: find the adjective it comes from
            key = next((k for k, v in table.items() if v[0] == cmp and k != cmp), key)
        return key, cmp
    base = next((k for k, v in table.items() if v[0] == key), None)
    if base is not None:
        return base, key
    if key.startswith(("more ", "less ")):
        return key.split(" ", 1)[1], key
    return key, key if key.endswith("er") else f"more {key}"


def attribute_ensemble(attribute: str, templates: QueryTemplates | str | Path | None = None) -> AttributeEnsemble:
    """The sentences a bare attribute word expands to; three or more words are one sentence, as given."""
    text = " ".join((attribute or "").split())
    if not text:
        raise PcclipError("empty attribute; give a word such as 'larger' or a full comparative sentence")
    tset = templates if isinstance(templates, QueryTemplates) else load_query_templates(templates)
    if len(text.split()) >= 3:
        return AttributeEnsemble(text, (text,), False, tset.name)
    word, cmp = attribute_forms(text)
    kind = tset.kinds.get(word)
    sentences = []
    for t in tset.templates:
        if "{kind}" in t and kind is None:
            continue  # this template needs to know what sort of attribute the word names
        s = t.format(word=word, cmp=cmp, kind=kind)
        if s not in sentences:
            sentences.append(s)
    if not sentences:
        raise PcclipError(f"every template of {tset.source or tset.name} needs {{kind}}, and {word!r} has none "
                          "in its [kinds] table; add one, or a template without {kind}")
    return AttributeEnsemble(text, tuple(sentences), True, tset.name)


def ensemble_vectors(clip, ensembles: list[AttributeEnsemble]):
    """One unit query vector per ensemble: the normalised mean of its sentences' normalised text embeddings."""
    import numpy as np

    flat = [s for e in ensembles for s in e.sentences]
    emb = clip.encode_texts(flat) if flat else np.zeros((0, clip.embed_dim), np.float32)
    out, at = [], 0
    for e in ensembles:
        mean = emb[at : at + len(e.sentences)].mean(axis=0)
        at += len(e.sentences)
        out.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return np.asarray(out, dtype=np.float32).reshape(len(ensembles), clip.embed_dim)


def ensemble_vector(clip, ensemble: AttributeEnsemble):
    return ensemble_vectors(clip, [ensemble])[0]
