"""Turn an attribute word ("larger", "blue") into the comparative sentence that rank and retrieve score."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pcclip_cli.core.errors import PcclipError
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
