"""The fidelity audit: statements found in comparatives, scored against a shapes world's known attributes."""

from __future__ import annotations

import json

import pytest

from conftest import assert_clean_error
from pcclip_cli.filtering.audit import audit_records, differences, read_attributes, score
from pcclip_cli.filtering.statements import load_vocabulary, parse

RED_SMALL_CIRCLE = {"count": 1, "objects": [{"colour": "red", "size": "small", "shape": "circle"}]}
BLUE_LARGE_SQUARE = {"count": 1, "objects": [{"colour": "blue", "size": "large", "shape": "square"}]}
TWO = {"count": 2, "objects": [{"colour": "green", "size": "small", "shape": "star", "position": "left"},
                               {"colour": "red", "size": "large", "shape": "diamond", "position": "right"}]}


def statements(text):
    return {(s.image, s.kind, s.value) for s in parse(text, load_vocabulary())}


def test_statements_are_attributed_to_the_image_they_concern():
    got = statements("The first shape is a small red circle, while the second shape is a larger blue square.")
    assert got == {("first", "size", "small"), ("first", "colour", "red"), ("first", "shape", "circle"),
                   ("second", "size_comparison", "bigger"), ("second", "colour", "blue"),
                   ("second", "shape", "square")}
    assert ("first", "size_comparison", "smaller") in statements("The first picture holds a tinier object than "
                                                                 "the second picture does.")
    assert statements("Both shapes are green, but the first is a star.") == {
        ("both", "colour", "green"), ("first", "shape", "star")}
    assert statements("The first image has one yellow diamond while the second image has two shapes.") == {
        ("first", "count", "1"), ("first", "colour", "yellow"), ("first", "shape", "diamond"),
        ("second", "count", "2")}
    # "the one" is not a count, a negated clause says nothing scorable, "less large" is one comparison.
    assert statements("The shape in the first photo is less large than the one in the second photo.") == {
        ("first", "size_comparison", "smaller")}
    assert statements("The first is not blue.") == set()


def test_verdicts_correct_swapped_wrong_undecidable():
    vocab = load_vocabulary()
    verdict = {}
    for text in ("The first is red.", "The first is blue.", "The first is purple.", "The first is bigger.",
                 "The first is smaller."):
        (st,) = parse(text, vocab)
        verdict[text] = score(st, RED_SMALL_CIRCLE, BLUE_LARGE_SQUARE)
    assert verdict == {"The first is red.": "correct", "The first is blue.": "swapped",
                       "The first is purple.": "wrong", "The first is bigger.": "swapped",
                       "The first is smaller.": "correct"}
    (st,) = parse("The first is bigger.", vocab)
    assert score(st, RED_SMALL_CIRCLE, TWO) == "undecidable"  # one object against two: no single size
    assert differences(RED_SMALL_CIRCLE, BLUE_LARGE_SQUARE) == ["size", "colour", "shape"]
    assert differences(RED_SMALL_CIRCLE, TWO) == ["count"]


def test_precision_coverage_and_swaps_of_a_hand_made_file():
    attrs = {"a": RED_SMALL_CIRCLE, "b": BLUE_LARGE_SQUARE}
    recs = [(1, {"key": "a -> b", "first": "a", "second": "b",
                 "text": "The first is a small red circle, the second a large blue square."}),
            (2, {"key": "b -> a", "first": "b", "second": "a", "text": "The first is red and the second is blue."})]
    rep = audit_records(recs, attrs, load_vocabulary()).as_dict()
    assert rep["correct"] == 6 and rep["swapped"] == 2 and rep["wrong"] == 0
    assert rep["precision"] == pytest.approx(6 / 8) and rep["swap_rate"] == pytest.approx(2 / 8)
    # 3 differences per pair; the second text states only colour, and wrongly.
    assert rep["differences_present"] == 6 and rep["differences_stated"] == 3
    assert rep["examples"]["swapped"][0]["key"] == "b -> a"


def test_the_oracle_scores_100_percent_and_so_does_its_filtered_file(cli, world, tmp_path):
    comps = tmp_path / "oracle.jsonl"
    assert cli("generate", "--llm", "template", "--captions", world / "captions.jsonl", "--pairs", 600,
               "--out", comps, "--json").code == 0
    res = cli("audit", comps, "--captions", world / "captions.jsonl", "--json")
    assert res.code == 0, res.stderr
    rep = res.json()
    assert rep["records"] == 600 and rep["statements"] > 1000
    assert rep["precision"] == 1.0 and rep["coverage"] == 1.0 and rep["swapped"] == rep["wrong"] == 0
    assert set(rep["by_kind"]) >= {"colour", "shape", "count", "size_comparison"}
    kept = tmp_path / "kept.jsonl"
    assert cli("filter", comps, "--out", kept, "--json").code == 0
    again = cli("audit", kept, "--captions", world / "captions.jsonl", "--json").json()
    assert again["precision"] == 1.0 and 0 < again["records"] <= 600
    table = cli("audit", comps, "--captions", world / "captions.jsonl")
    assert "precision 100.0%, coverage 100.0%" in table.stderr and table.stdout == ""


def test_captions_without_attributes_say_what_the_audit_needs(run_pcclip, world, tmp_path):
    plain = tmp_path / "captions.jsonl"
    with open(plain, "w") as fh:
        for line in (world / "captions.jsonl").read_text().splitlines():
            rec = json.loads(line)
            rec.pop("attributes")
            rec["image"] = str(world / rec["image"])
            fh.write(json.dumps(rec) + "\n")
    comps = tmp_path / "c.jsonl"
    comps.write_text(json.dumps({"key": "x", "first": "img_000000", "second": "img_000001", "text": "x"}) + "\n")
    assert_clean_error(run_pcclip("audit", comps, "--captions", plain), "no attributes", "needs", "objects")
    with pytest.raises(Exception, match="no attributes"):
        read_attributes(plain)


def test_a_malformed_vocabulary_is_one_error_line(run_pcclip, world, tmp_path):
    comps = tmp_path / "c.jsonl"
    comps.write_text(json.dumps({"key": "x", "first": "img_000000", "second": "img_000001", "text": "x"}) + "\n")
    bad = tmp_path / "vocab.toml"
    bad.write_text('[colour]\nred = "red"\n')
    assert_clean_error(run_pcclip("audit", comps, "--captions", world / "captions.jsonl", "--vocabulary", bad),
                       "vocab.toml", "[colour] red must be a non-empty list")
    bad.write_text("[colour\n")
    assert_clean_error(run_pcclip("audit", comps, "--captions", world / "captions.jsonl", "--vocabulary", bad),
                       "vocab.toml")
