"""Grounded filter rules: drop texts naming attributes neither caption names, and texts reversing first/second."""

from __future__ import annotations

import json

from conftest import assert_clean_error
from pcclip_cli.filtering.rules import filter_records, load_rules


def rec(text, first="a tiny red circle", second="a big blue square", **extra):
    return {"key": f"{first} -> {second}", "first": "x", "second": "y", "first_caption": first,
            "second_caption": second, "text": text, **extra}


TEXTS = {
    "kept": "The first shape is a small red circle, while the second shape is a larger blue square.",
    "kept-synonyms": "The first is little and red, whereas the second is a huge blue square.",
    "ungrounded-colour": "The first shape is a small pink circle, while the second shape is a blue square.",
    "ungrounded-shape": "The first shape is a small red circle, while the second is a blue hexagon here.",
    "swap-colour": "The first shape is a small blue circle, while the second shape is a large red square.",
    "swap-size": "The first picture holds a bigger object than the second picture, both clearly drawn.",
}


def test_grounded_and_swap_rules_count_their_drops():
    rules = load_rules()
    kept, report = filter_records(((i, rec(t, tag=k)) for i, (k, t) in enumerate(TEXTS.items(), 1)), rules)
    assert sorted(r["tag"] for r in kept) == ["kept", "kept-synonyms"]
    assert report["rules"]["ungrounded-attribute"]["dropped"] == 2
    assert report["rules"]["first-second-swap"]["dropped"] == 2


def test_undecidable_texts_are_kept():
    rules = load_rules()
    # Both captions name red: saying the second is red is no swap. Class pairs compare their names.
    both_red = rec("The first shape is a small red circle, while the second shape is a red square too.",
                   second="a big red square")
    classes = {"key": "red circle -> blue square", "kind": "classes", "first": "red circle",
               "second": "blue square", "text": "An image of a red circle shows a round red shape, unlike the "
                                                 "blue square of the second class."}
    kept, _ = filter_records([(1, both_red), (2, classes)], rules)
    assert len(kept) == 2


def test_a_user_vocabulary_extends_the_words(tmp_path):
    from pcclip_cli.core.paths import PROMPTS_DIR

    vocab = (PROMPTS_DIR / "vocabulary.toml").read_text().replace('pink = ["pink"]', 'pink = ["pink", "rosy"]')
    (tmp_path / "words.toml").write_text(vocab)
    rules = (PROMPTS_DIR / "filter_rules.toml").read_text().replace(
        'check = "grounded"', 'check = "grounded"\nvocabulary = "words.toml"')
    (tmp_path / "rules.toml").write_text(rules)
    text = "The first shape is a small rosy circle, while the second shape is a large blue square."
    assert filter_records([(1, rec(text))], load_rules())[1]["rules"]["ungrounded-attribute"]["dropped"] == 0
    custom = load_rules(tmp_path / "rules.toml")
    assert filter_records([(1, rec(text))], custom)[1]["rules"]["ungrounded-attribute"]["dropped"] == 1


def test_a_malformed_vocabulary_is_one_error_line(run_pcclip, tmp_path):
    from pcclip_cli.core.paths import PROMPTS_DIR

    (tmp_path / "words.toml").write_text("[colour]\nred = []\n")
    rules = (PROMPTS_DIR / "filter_rules.toml").read_text().replace(
        'check = "swap"', 'check = "swap"\nvocabulary = "words.toml"')
    (tmp_path / "rules.toml").write_text(rules)
    comps = tmp_path / "c.jsonl"
    comps.write_text(json.dumps(rec(TEXTS["kept"])) + "\n")
    assert_clean_error(run_pcclip("filter", comps, "--out", tmp_path / "o.jsonl", "--rules", tmp_path / "rules.toml"),
                       "words.toml", "[colour] red must be a non-empty list")
    assert not (tmp_path / "o.jsonl").exists()
