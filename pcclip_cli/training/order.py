"""Order-aware training: the text of the reversed pair (its image references exchanged by a rule file), swapped-
text hard negatives and reversal pairs.

For a pair (I1, I2, T12) the reversed pair is (I2, I1, swap(T12)). `--hard-negatives swap` puts the reversed
pair in the same batch as its original, unsampled by itself: with the contrastive loss over the batch, swap(T12)
is then the positive of g(I2) - g(I1) = -(g(I1) - g(I2)) and a negative of g(I1) - g(I2), and T12 a negative of
the reversed difference. `--reversal-pairs` adds the reversed pairs as training examples of their own. Texts in
which the rule finds no image reference get neither and are counted.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from pcclip_cli.core.config import load_toml
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.core.paths import PROMPTS_DIR

DEFAULT_SWAP_RULES = PROMPTS_DIR / "order_swap.toml"


class HardNegatives(str, enum.Enum):
    """Extra negatives per pair (`--hard-negatives`): none, or the swapped text (its reversed pair)."""

    none = "none"
    swap = "swap"


@dataclass(frozen=True)
class SwapRule:
    """Phrase -> partner phrase (lower case), and one regex matching any phrase as whole words."""

    partner: dict
    pattern: re.Pattern

    def swap(self, text: str) -> str | None:
        """`text` with every image reference exchanged; None when it has none."""
        hits = 0

        def sub(m: re.Match) -> str:
            nonlocal hits
            hits += 1
            new = self.partner[" ".join(m.group(0).lower().split())]
            return new[0].upper() + new[1:] if m.group(0)[0].isupper() else new

        out = self.pattern.sub(sub, text)
        return out if hits else None


def _phrases(value, path: Path) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise PcclipError(f"{path}: each [[pairs]] entry needs `a` and `b` as a phrase or a list of phrases")
    return [" ".join(v.lower().split()) for v in items]


@lru_cache(maxsize=8)
def load_swap_rule(path: str | Path = DEFAULT_SWAP_RULES) -> SwapRule:
    """The swap rule of a TOML file of [[pairs]] a = ..., b = ... (phrases, or equal-length lists of them)."""
    path = Path(path)
    data = load_toml(path, what="swap rules")
    partner: dict[str, str] = {}
    for k, entry in enumerate(data.get("pairs") or []):
        a, b = _phrases(entry.get("a"), path), _phrases(entry.get("b"), path)
        if len(a) != len(b):
            raise PcclipError(f"{path}: pairs entry {k + 1} lists {len(a)} phrase(s) in `a` and {len(b)} in `b`; "
                              "give them one partner each")
        for x, y in zip(a, b, strict=True):
            for p, q in ((x, y), (y, x)):
                if partner.get(p, q) != q:
                    raise PcclipError(f"{path}: {p!r} has two partners ({partner[p]!r} and {q!r})")
                partner[p] = q
    if not partner:
        raise PcclipError(f"{path}: no [[pairs]] entries; add pairs such as a = \"first\", b = \"second\"")
    # Longest first, so "image on the left" wins over any shorter phrase inside it.
    alts = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(partner, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alts})(?![\w-])", re.IGNORECASE)
    return SwapRule(partner, pattern)


def swap_references(text: str, rule: SwapRule | None = None) -> str | None:
    """`text` with its image references exchanged (first <-> second, ...); None when it names neither image."""
    return (rule or load_swap_rule()).swap(text)


def add_order_rows(data, hard_negatives: HardNegatives = HardNegatives.none, reversal_pairs: bool = False,
                   rule: SwapRule | None = None):
    """PairData with the reversed pairs appended. Rows [0, trainable) are sampled; `partner[i]` is the row
    that joins row i in its batch (-1: none). Counts: `swapped` texts, `no_reference` texts left as they were."""
    hard_negatives = HardNegatives(hard_negatives)
    n = len(data)
    if hard_negatives == HardNegatives.none and not reversal_pairs:
        return replace(data, trainable=n, partner=None)
    rule = rule or load_swap_rule()
    first, second, texts = list(data.first), list(data.second), list(data.texts)
    reversed_of = [-1] * n
    for i in range(n):
        swapped = rule.swap(data.texts[i])
        if swapped is None:
            continue
        reversed_of[i] = len(texts)
        first.append(data.second[i])
        second.append(data.first[i])
        texts.append(swapped)
    n_swapped = sum(r >= 0 for r in reversed_of)
    counts = {**data.counts, "swapped": n_swapped, "no_reference": n - n_swapped}
    partner = None
    if hard_negatives == HardNegatives.swap:
        # Row n + k is the reversal of the k-th swapped row; under --reversal-pairs it is sampled too, and its
        # partner is that original row.
        back = [i for i in range(n) if reversed_of[i] >= 0] if reversal_pairs else [-1] * n_swapped
        partner = reversed_of + back
    trainable = len(texts) if reversal_pairs else n
    counts["trainable"] = trainable
    return replace(data, first=first, second=second, texts=texts, counts=counts, trainable=trainable,
                   partner=partner)


def with_partners(rows, partner):
    """The batch's rows followed by their partners' rows (those that have one)."""
    if partner is None:
        return rows
    import torch

    extra = partner[rows]
    return torch.cat([rows, extra[extra >= 0]])
