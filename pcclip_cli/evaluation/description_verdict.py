"""What EX2's analysis decides about one description (its verdict) and the attribute categories it counts."""

from __future__ import annotations

from dataclasses import dataclass

VISUAL = ("colour", "size", "shape", "texture", "parts")
NON_VISUAL = ("habitat", "taste", "origin", "use", "other")
CATEGORIES = VISUAL + NON_VISUAL


@dataclass(frozen=True)
class Verdict:
    """What one description says: None where a judge's answer could not be read."""

    informative: bool
    visual: bool
    attributes: tuple[str, ...]  # categories, in CATEGORIES order
    evidence: tuple[str, ...] = ()  # the words that decided it (rules) or the judge's answer

    @property
    def label(self) -> str:
        return "spurious" if not self.informative else ("visual" if self.visual else "non-visual")
