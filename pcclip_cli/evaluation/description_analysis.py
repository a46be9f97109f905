"""EX2's analysis of class descriptions: spurious or informative, visual or non-visual, which attributes they name.

Each description (a `descriptions` record of `pcclip generate`: `first` is the class, `text` the description) gets
one verdict, by rules (default) or by an LLM judge:

    rules   the text is cut into words; the class's name (singular or plural) is taken out, and so are the words
            of the lexicon's [ignore] lists (function words, photo boilerplate such as "click to enlarge photo
            of", generic nouns). Nothing left: spurious. Otherwise informative, and the lexicon's categories name
            its attributes (colour, size, shape, texture, parts are visual; habitat, taste, origin, use, other
            are not). A description is visual when it names a visual category; an informative one that names
            none of the categories is counted under "other" (non-visual).
    judge   any registered LLM answers a few-shot rubric (a `judge` prompt file) per description; its first line
            must read "spurious" or "informative; visual|non-visual; ATTRIBUTES" ("visual; ..." and "non-visual;
            ..." alone are read as informative). Other answers are counted as unparseable and left out of the
            shares.

On a world with known attributes (its captions.jsonl), the colour, size and shape statements are also scored
against what the class's images show, with the class audit's scoring (filtering/class_audit.py): the precision of
visual statements. The report holds the paper's Table 2 per source (share informative, share non-visual among the
informative ones, that precision) and the attribute frequencies of Figure 4, which `plot_attribute_frequencies`
(evaluation/report.py) draws side by side for the sources; the LLM judge is evaluation/description_judge.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.paths import PROMPTS_DIR

from .description_verdict import CATEGORIES, NON_VISUAL, VISUAL, Verdict

if TYPE_CHECKING:
    from .description_judge import Judge

DEFAULT_LEXICON = PROMPTS_DIR / "description_lexicon.toml"
EXAMPLES = 3
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
# A world vocabulary's kinds (filtering/statements.py) and the category each joins.
_VOCABULARY_KINDS = {"colour": "colour", "size": "size", "size_comparison": "size", "shape": "shape"}


def stem(word: str) -> str:
    """A plural or third-person form's singular ("cherries" -> "cherry", "grows" -> "grow"); others unchanged."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "'s")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "oes")):
        return word[:-2]
    return word[:-1]


def words(text: str) -> list[str]:
    return [stem(t) for t in _TOKEN.findall(text.lower())]


@dataclass(frozen=True)
class Lexicon:
    phrases: dict  # stemmed phrase (tuple of words) -> category, or "" for an ignored phrase
    longest: int
    source: str
    vocabulary: str | None = None


def load_lexicon(path: str | Path | None = None, vocabulary: str | Path | None = None) -> Lexicon:
    """The lexicon of a TOML file (default: the shipped general one), with a world vocabulary's colour, size and
    shape words added (they win over the lexicon's where both name a word) and its count nouns ignored."""
    lex = str(Path(path).expanduser().resolve()) if path is not None else str(DEFAULT_LEXICON)
    voc = str(Path(vocabulary).expanduser().resolve()) if vocabulary is not None else None
    return _load(lex, voc)


def _phrase_list(p: Path, table: str, key: str, value) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(w, str) and w.strip() for w in value):
        raise DataError(f"{p}: [{table}] {key} must be a non-empty list of words")
    return value


@lru_cache(maxsize=8)
def _load(path: str, vocabulary: str | None) -> Lexicon:
    from pcclip_cli.core.config import load_toml

    p = Path(path)
    if not p.exists():
        raise DataError(f"lexicon file not found: {p}")
    data = load_toml(p, what="lexicon")
    unknown = sorted(set(data) - {"visual", "non_visual", "ignore"})
    if unknown:
        raise DataError(f"{p}: unknown table [{unknown[0]}]; a lexicon has tables [visual], [non_visual], [ignore]")
    phrases: dict = {}

    def add(phrase: str, category: str, override: bool = False, where: str = ""):
        key = tuple(words(phrase))
        if not key:
            raise DataError(f"{where or p}: {phrase!r} has no letters or digits")
        old = phrases.get(key)
        if old is not None and old != category and not override:
            raise DataError(f"{where or p}: {phrase!r} is in both {old or 'ignore'} and {category or 'ignore'}")
        phrases[key] = category

    for table, allowed in (("visual", VISUAL), ("non_visual", NON_VISUAL)):
        section = data.get(table)
        if not isinstance(section, dict):
            raise DataError(f"{p}: [{table}] is missing; give it category = [\"word\", ...] lines")
        for category, values in section.items():
            if category not in allowed:
                raise DataError(f"{p}: [{table}] {category}: not a {table.replace('_', '-')} category; they are "
                                f"{', '.join(allowed)}")
            for w in _phrase_list(p, table, category, values):
                add(w, category)
    ignore = data.get("ignore", {})
    if not isinstance(ignore, dict):
        raise DataError(f"{p}: [ignore] must be a table of word lists")
    for key, values in ignore.items():
        for w in _phrase_list(p, "ignore", key, values):
            add(w, "")
    if vocabulary is not None:
        from pcclip_cli.filtering.statements import load_vocabulary

        vocab = load_vocabulary(vocabulary)
        for kind, category in _VOCABULARY_KINDS.items():
            for phrase in vocab.values[kind]:
                add(" ".join(phrase), category, override=True)
        for noun in vocab.words["count_nouns"]:
            add(noun, "", override=True)
    return Lexicon(phrases, max(len(k) for k in phrases), str(p), vocabulary)


def _without_name(tokens: list[str], concept: str) -> list[str]:
    name = words(concept)
    if not name:
        return tokens
    out, i = [], 0
    while i < len(tokens):
        if tokens[i: i + len(name)] == name:
            i += len(name)
            continue
        out.append(tokens[i])
        i += 1
    return out


def classify_text(text: str, concept: str, lexicon: Lexicon) -> Verdict:
    """The rule-based verdict on one description of `concept`."""
    tokens = _without_name(words(text), concept)
    found: list[tuple[str, str]] = []  # (category, phrase)
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        for n in range(min(lexicon.longest, len(tokens) - i), 0, -1):
            category = lexicon.phrases.get(tuple(tokens[i: i + n]))
            if category is not None:
                if category:
                    found.append((category, " ".join(tokens[i: i + n])))
                i += n
                break
        else:
            if not tokens[i].isdigit():
                rest.append(tokens[i])
            i += 1
    if not found and not rest:
        return Verdict(False, False, ())
    named = {c for c, _ in found} or {"other"}
    attributes = tuple(c for c in CATEGORIES if c in named)
    evidence = tuple(dict.fromkeys(ph for _, ph in found)) or tuple(dict.fromkeys(rest))[:5]
    return Verdict(True, any(c in VISUAL for c in attributes), attributes, evidence)


@dataclass
class SourceReport:
    name: str
    file: str
    descriptions: int = 0
    without_text: int = 0
    unparseable: int = 0  # judge answers that did not read as the rubric asks
    spurious: int = 0
    visual: int = 0
    non_visual: int = 0
    attributes: dict = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    truth: dict | None = None  # the class audit of the visual statements, when the world's attributes are known
    examples: dict = field(default_factory=lambda: {"spurious": [], "visual": [], "non-visual": []})

    @property
    def judged(self) -> int:
        return self.spurious + self.visual + self.non_visual

    @property
    def informative(self) -> int:
        return self.visual + self.non_visual

    def add(self, concept: str, text: str, verdict: Verdict | None) -> None:
        if verdict is None:
            self.unparseable += 1
            return
        if not verdict.informative:
            self.spurious += 1
        elif verdict.visual:
            self.visual += 1
        else:
            self.non_visual += 1
        for c in verdict.attributes:
            self.attributes[c] += 1
        shown = self.examples[verdict.label]
        if len(shown) < EXAMPLES:
            shown.append({"class": concept, "text": text, "attributes": list(verdict.attributes)})

    def as_dict(self) -> dict:
        def share(a, b):
            return round(a / b, 4) if b else None

        d = {k: v for k, v in asdict(self).items() if k not in ("truth", "examples", "attributes")}
        return {**d, "judged": self.judged, "informative": self.informative,
                "informative_share": share(self.informative, self.judged),
                "non_visual_share": share(self.non_visual, self.informative),
                "visual_precision": (self.truth or {}).get("precision"),
                "attributes": self.attributes,
                "attribute_shares": {c: share(n, self.informative) for c, n in self.attributes.items()},
                "truth": self.truth, "examples": self.examples}


@dataclass
class AnalysisOptions:
    lexicon: str | None = None  # lexicon TOML (default: the shipped general one)
    vocabulary: str | None = None  # a world's vocabulary.toml: its colour/size/shape words join the lexicon
    captions: str | None = None  # a world's captions.jsonl: score visual statements against the classes' truth
    label: str = "produce"  # with captions: the attribute that names each image's class
    judge: Judge | None = None  # an LLM judge instead of the rules
    records: str | None = None  # write every description's verdict here (JSONL)
    plot: str | None = None  # write the attribute-frequency figure here (PNG)


def parse_source(spec: str) -> tuple[str, Path]:
    """`NAME=PATH` or `PATH` (named by the file's stem)."""
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = Path(spec).stem, spec
    if not name.strip() or not path.strip():
        raise PcclipError(f"source {spec!r}: write PATH or NAME=PATH")
    return name.strip(), Path(path).expanduser()


def _read(name: str, path: Path) -> tuple[list[tuple[str, str]], int]:
    from pcclip_cli.data.comparatives import RecordKind, read_comparatives

    if not path.exists():
        raise DataError(f"descriptions file not found: {path}")
    items, empty = [], 0
    for c in read_comparatives(path, kinds=(RecordKind.descriptions,), other_kinds="error",
                               what="descriptions file"):
        text = c.record.get("text")
        if not isinstance(text, str) or not text.strip():
            empty += 1
            continue
        items.append((c.record["first"], text))
    if not items:
        raise DataError(f"descriptions file {path} ({name}) holds no description with text")
    return items, empty


def _truth(path: Path, opts: AnalysisOptions) -> dict:
    """The class audit of a source's colour, size and shape statements against the world's classes."""
    from pcclip_cli.filtering.class_audit import audit_class_file

    audit = audit_class_file(path, opts.captions, opts.vocabulary, opts.label)
    return {k: audit[k] for k in ("statements", "correct", "wrong", "undecidable", "precision",
                                  "records_without_statements", "by_kind")}


def analyse_descriptions(sources: list[str], options: AnalysisOptions | None = None, *, progress=None) -> dict:
    """`pcclip analyse-descriptions`: EX2's Table 2 and attribute frequencies for each source of descriptions."""
    opts = options or AnalysisOptions()
    if not sources:
        raise PcclipError("give at least one descriptions file (PATH or NAME=PATH)")
    parsed = [parse_source(s) for s in sources]
    names = [n for n, _ in parsed]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise PcclipError(f"two sources are named {dup!r}; name them apart with NAME=PATH")
    lexicon = load_lexicon(opts.lexicon, opts.vocabulary)
    prompt = opts.judge.prepare() if opts.judge else None
    if opts.captions is not None and not Path(opts.captions).exists():
        raise DataError(f"captions file not found: {opts.captions}")
    read = [(name, path, *_read(name, path)) for name, path in parsed]
    # The truth check first: a class the world does not have fails before any judging.
    truths = [_truth(path, opts) if opts.captions is not None else None for _, path, _, _ in read]
    reports, rows = [], []
    for (name, path, items, empty), truth in zip(read, truths, strict=True):
        rep = SourceReport(name, str(path), descriptions=len(items), without_text=empty, truth=truth)
        if opts.judge:
            verdicts, raw = opts.judge.run(items, prompt, progress)
        else:
            verdicts, raw = [classify_text(t, c, lexicon) for c, t in items], [None] * len(items)
        for (concept, text), verdict, answer in zip(items, verdicts, raw, strict=True):
            rep.add(concept, text, verdict)
            rows.append({"source": name, "class": concept, "text": text,
                         "label": verdict.label if verdict else "unparseable",
                         "attributes": list(verdict.attributes) if verdict else [],
                         **({"answer": answer} if answer is not None else
                            {"evidence": list(verdict.evidence)})})
        reports.append(rep)
    result = {
        "method": "judge" if opts.judge else "rules",
        "lexicon": lexicon.source, "vocabulary": lexicon.vocabulary,
        "judge": ({"llm": opts.judge.llm, "prompt": prompt.name, "prompt_sha256": prompt.sha256}
                  if opts.judge else None),
        "captions": opts.captions, "label": opts.label if opts.captions else None,
        "categories": {"visual": list(VISUAL), "non_visual": list(NON_VISUAL)},
        "sources": [r.as_dict() for r in reports],
        "records": None, "plot": None,
    }
    if opts.records:
        from pcclip_cli.core.io import write_text_atomic

        write_text_atomic(Path(opts.records), "".join(json.dumps(r) + "\n" for r in rows))
        result["records"] = opts.records
    if opts.plot:
        from .report import plot_attribute_frequencies

        plot_attribute_frequencies(result["sources"], Path(opts.plot))
        result["plot"] = opts.plot
    return result
