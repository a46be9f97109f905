"""What a comparative says about each image: attribute statements (colour, size, shape, count) and whom they concern.

A text is split into clauses (at sentence ends, commas, semicolons and contrast words such as "while", "but",
"and"). In each clause the words of the vocabulary (prompts/vocabulary.toml) are found, longest phrase first, and
each is attributed to the nearest mention of "first", "second" or "both" in its clause (ties go to the mention
before it); a clause without a mention continues the previous clause's image. Size comparisons ("larger",
"smaller") become a relation between the two images. Clauses with a negation are skipped: "not red" says nothing
this parser can score. The same statements serve the audit (scored against known attributes) and the grounded
filter rules (checked against the words of the two captions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pcclip_cli.core.errors import DataError
from pcclip_cli.core.paths import PROMPTS_DIR

KINDS = ("colour", "size", "size_comparison", "shape", "count")
DEFAULT_VOCABULARY = PROMPTS_DIR / "vocabulary.toml"
_WORD_LISTS = ("count_nouns", "first", "second", "both", "negation")
_SPLIT = re.compile(r"[;.!?,:]|\b(?:while|whilst|whereas|where|but|and|however|instead of|unlike|compared "
                    r"(?:with|to))\b")
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_FILLER = {"is", "are", "was", "has", "have", "of", "in", "the", "a", "an", "it", "its", "that"}


@dataclass(frozen=True)
class Vocabulary:
    values: dict  # kind -> {phrase (tuple of words) -> value}
    words: dict  # count_nouns, first, second, both, negation -> frozenset of words
    source: str

    def kind_values(self, kind: str) -> set[str]:
        return set(self.values[kind].values())


@dataclass(frozen=True)
class Statement:
    kind: str  # colour | size | shape | count | size_comparison
    value: str  # canonical value: "red", "small", "circle", "2", "bigger"
    image: str  # first | second | both | unknown
    phrase: str  # the words of the text that made it


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """The vocabulary of a TOML file (default: prompts/vocabulary.toml), or a DataError naming what is wrong."""
    return _load(str(Path(path).expanduser().resolve()) if path is not None else str(DEFAULT_VOCABULARY))


@lru_cache(maxsize=8)
def _load(path: str) -> Vocabulary:
    from pcclip_cli.core.config import load_toml

    p = Path(path)
    if not p.exists():
        raise DataError(f"vocabulary file not found: {p}")
    data = load_toml(p, what="vocabulary")
    unknown = sorted(set(data) - set(KINDS) - {"words"})
    if unknown:
        raise DataError(f"{p}: unknown table [{unknown[0]}]; a vocabulary has tables "
                        f"{', '.join('[' + k + ']' for k in (*KINDS, 'words'))}")
    values: dict = {}
    for kind in KINDS:
        table = data.get(kind)
        if not isinstance(table, dict) or not table:
            raise DataError(f"{p}: [{kind}] is missing or empty; give it value = [\"word\", ...] lines")
        phrases: dict = {}
        for value, words in table.items():
            if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip()
                                                                   for w in words):
                raise DataError(f"{p}: [{kind}] {value} must be a non-empty list of words, e.g. "
                                f"{value} = [\"{value}\"]")
            for w in words:
                key = tuple(_TOKEN.findall(w.lower()))
                if not key:
                    raise DataError(f"{p}: [{kind}] {value}: {w!r} has no letters or digits")
                if key in phrases and phrases[key] != value:
                    raise DataError(f"{p}: [{kind}] {w!r} names both {phrases[key]} and {value}")
                phrases[key] = value
        values[kind] = phrases
    words_table = data.get("words", {})
    if not isinstance(words_table, dict):
        raise DataError(f"{p}: [words] must be a table of word lists")
    words = {}
    for name in _WORD_LISTS:
        lst = words_table.get(name)
        if not isinstance(lst, list) or not lst or not all(isinstance(w, str) and w.strip() for w in lst):
            raise DataError(f"{p}: [words] {name} must be a non-empty list of words")
        words[name] = frozenset(w.lower().strip() for w in lst)
    return Vocabulary(values, words, str(p))


def _matches(tokens: list[str], vocab: Vocabulary) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, value) of vocabulary phrases in `tokens`, longest first, not overlapping."""
    found = []
    taken = [False] * len(tokens)
    candidates = []
    for kind in KINDS:
        for phrase, value in vocab.values[kind].items():
            candidates.append((len(phrase), phrase, kind, value))
    candidates.sort(key=lambda c: -c[0])
    for n, phrase, kind, value in candidates:
        for i in range(len(tokens) - n + 1):
            if tuple(tokens[i: i + n]) == phrase and not any(taken[i: i + n]):
                found.append((i, i + n, kind, value))
                for k in range(i, i + n):
                    taken[k] = True
    return sorted(found)


def _is_count(tokens: list[str], end: int, vocab: Vocabulary) -> bool:
    """A number phrase ending at `end` counts things when a noun follows within two words."""
    shapes = {w for phrase in vocab.values["shape"] for w in phrase}
    for k in range(end, min(end + 3, len(tokens))):
        word = tokens[k]
        if word in vocab.words["count_nouns"] or word in shapes:
            return True
        if word in _FILLER:
            return False
    return False


def parse(text: str, vocab: Vocabulary) -> list[Statement]:
    """The attribute statements of `text`, each with the image it concerns."""
    out: list[Statement] = []
    carried = "unknown"
    refs = {"first": vocab.words["first"], "second": vocab.words["second"], "both": vocab.words["both"]}
    for clause in _SPLIT.split(text.lower()):
        tokens = _TOKEN.findall(clause)
        if not tokens:
            continue
        mentions = [(i, who) for i, t in enumerate(tokens) for who, ws in refs.items() if t in ws]
        if any(t in vocab.words["negation"] for t in tokens):
            carried = mentions[-1][1] if mentions else carried
            continue
        for start, end, kind, value in _matches(tokens, vocab):
            if kind == "count" and not _is_count(tokens, end, vocab):
                continue
            if kind == "size_comparison":
                before = [m for m in mentions if m[0] < start and m[1] != "both"]
                after = [m for m in mentions if m[0] >= end and m[1] != "both"]
                who = before[-1][1] if before else (after[0][1] if after else carried)
                if who == "both":
                    continue
            elif mentions:
                # Nearest mention; on a tie the one before the phrase.
                who = min(mentions, key=lambda m: (abs(m[0] - start) if m[0] < start else m[0] - (end - 1),
                                                   m[0] > start))[1]
            else:
                who = carried
            out.append(Statement(kind, value, who, " ".join(tokens[start:end])))
        if mentions:
            carried = mentions[-1][1]
    return out


def caption_values(caption: str | None, vocab: Vocabulary) -> dict[str, set[str]]:
    """The attribute values a caption names, by kind (colour, size, shape, count)."""
    found: dict[str, set[str]] = {k: set() for k in KINDS}
    if not caption:
        return found
    tokens = _TOKEN.findall(caption.lower())
    for _, end, kind, value in _matches(tokens, vocab):
        if kind == "count" and not _is_count(tokens, end, vocab):
            continue
        found[kind].add(value)
    return found
