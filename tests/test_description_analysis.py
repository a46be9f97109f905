"""`pcclip analyse-descriptions` (EX2's analysis): known-answer verdicts of the rules, the judge's parser, a real path
through the CLI on template descriptions of a shapes world (with the truth check and the plot), the judge path with
the template backend and with SmolLM2 through llama.cpp (unparseable answers counted), and bad input."""

from __future__ import annotations

import json

import pytest

from conftest import assert_clean_error
from pcclip_cli.evaluation.description_analysis import classify_text, load_lexicon
from pcclip_cli.evaluation.description_judge import parse_judgement


@pytest.mark.parametrize(("concept", "text", "label", "attributes"), [
    ("cherry", "a photo of a cherry.", "spurious", ()),
    ("cherry", "a small red round fruit", "visual", ("colour", "size", "shape")),
    ("cherry", "grown in warm climates", "non-visual", ("habitat",)),
    ("cherry", "Click to enlarge this image of cherries", "spurious", ()),
    ("cherry", "sweet cherries are eaten fresh or baked in pies", "non-visual", ("taste", "use")),
    ("cherry", "a glossy cherry with a long stem, native to Europe", "visual",
     ("size", "texture", "parts", "origin")),
    ("red pepper", "a photo of a red pepper", "spurious", ()),
    ("red pepper", "a red pepper is red and blocky", "visual", ("colour", "shape")),
    ("cherry", "the cherry is the official emblem here", "non-visual", ("other",)),
])
def test_rules_know_the_answer(concept, text, label, attributes):
    verdict = classify_text(text, concept, load_lexicon())
    assert verdict.label == label, verdict
    assert verdict.attributes == attributes, verdict


def test_a_world_vocabulary_joins_the_lexicon(tmp_path):
    vocab = tmp_path / "vocabulary.toml"
    from pcclip_cli.core.paths import PROMPTS_DIR

    # The shipped shapes vocabulary with one more shape word, which the general lexicon does not know.
    text = (PROMPTS_DIR / "vocabulary.toml").read_text().replace('heart = ["heart", "hearts"]',
                                                                 'heart = ["heart", "hearts", "cordate"]')
    vocab.write_text(text)
    assert classify_text("a cordate leaf", "lime", load_lexicon()).attributes == ("parts",)
    assert classify_text("a cordate leaf", "lime", load_lexicon(vocabulary=vocab)).attributes == ("shape", "parts")
    # Its count nouns carry no information: "a shape" says nothing about a red circle.
    assert classify_text("a red circle shape", "red circle", load_lexicon(vocabulary=vocab)).label == "spurious"


@pytest.mark.parametrize(("answer", "label", "attributes"), [
    ("spurious", "spurious", ()),
    (" Spurious.\nQ: more", "spurious", ()),
    ("informative; visual; colour, size, shape", "visual", ("colour", "size", "shape")),
    ("informative; non-visual; habitat", "non-visual", ("habitat",)),
    ("Informative, non visual: origin and use", "non-visual", ("origin", "use")),
    ("informative; visual; color", "visual", ("colour",)),
    (" non-visual; origin, use, taste", "non-visual", ("taste", "origin", "use")),
    ("Visual: colour", "visual", ("colour",)),
])
def test_judge_answers_parse(answer, label, attributes):
    verdict = parse_judgement(answer)
    assert verdict is not None and verdict.label == label and verdict.attributes == attributes


@pytest.mark.parametrize("answer", ["", "A cherry is a small red fruit.", "informative", "maybe spurious",
                                    "informative; colour"])
def test_judge_answers_that_do_not_follow_the_rubric_are_unparseable(answer):
    assert parse_judgement(answer) is None


@pytest.fixture
def descriptions(cli, world, tmp_path):
    """Template-LLM descriptions of the world's colour+shape classes (3 per class), and a hand-written source."""
    labels = sorted({json.loads(line)["label"] for line in (world / "classes" / "colour_shape.jsonl").open()})
    names = tmp_path / "names.txt"
    names.write_text("\n".join(labels[:4]) + "\n")
    template = tmp_path / "template.jsonl"
    res = cli("generate", "--llm", "template", "--kind", "descriptions", "--classes", names, "--n", "3",
              "--out", template, "--json")
    assert res.code == 0, res.stderr
    first = labels[0]
    hand = tmp_path / "hand.jsonl"
    rows = [f"a photo of a {first}.", f"a {first}, grown in warm climates", f"a small {first} with sharp corners",
            "  "]
    hand.write_text("".join(json.dumps({"key": f"{first} #{i}", "kind": "descriptions", "first": first,
                                        "text": t}) + "\n" for i, t in enumerate(rows)))
    return template, hand, labels[:4]


def test_analysis_through_the_cli(cli, world, descriptions, tmp_path):
    template, hand, classes = descriptions
    plot, records = tmp_path / "fig4.png", tmp_path / "verdicts.jsonl"
    res = cli("analyse-descriptions", f"template={template}", f"hand={hand}", "--captions", world / "captions.jsonl",
              "--label", "colour_shape", "--plot", plot, "--records", records, "--json")
    assert res.code == 0, res.stderr
    out = res.json()
    assert out["method"] == "rules"
    tpl, hw = out["sources"]
    assert tpl["name"] == "template" and tpl["descriptions"] == 12
    # The oracle names each class's colour and shape (and nothing non-visual), and says it right.
    assert tpl["informative_share"] == 1.0 and tpl["non_visual_share"] == 0.0
    assert tpl["attributes"]["colour"] == 12 and tpl["attributes"]["shape"] == 12
    assert tpl["visual_precision"] == 1.0 and tpl["truth"]["statements"] >= 24
    # The hand-written source: one spurious, one non-visual, one visual; the empty text is counted apart.
    assert (hw["descriptions"], hw["without_text"]) == (3, 1)
    assert (hw["spurious"], hw["non_visual"], hw["visual"]) == (1, 1, 1)
    assert hw["informative_share"] == pytest.approx(2 / 3, abs=1e-4) and hw["non_visual_share"] == 0.5
    assert hw["attributes"]["habitat"] == 1 and hw["attributes"]["size"] == 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(rows) == 15 and {r["label"] for r in rows if r["source"] == "hand"} == {"spurious", "visual",
                                                                                       "non-visual"}
    people = cli("analyse-descriptions", f"template={template}", f"hand={hand}")
    assert people.code == 0 and people.stdout == ""
    assert "informative %" in people.stderr and "habitat" in people.stderr


def test_the_template_backend_as_judge_gives_only_unparseable_answers(cli, descriptions):
    """The template backend writes descriptions, not rubric labels: every answer is counted as unparseable."""
    template, _, _ = descriptions
    res = cli("analyse-descriptions", template, "--judge", "template", "--json")
    assert res.code == 0, res.stderr
    src = res.json()["sources"][0]
    assert src["unparseable"] == src["descriptions"] == 12
    assert src["judged"] == 0 and src["informative_share"] is None
    assert res.json()["judge"]["prompt"] == "description-judge"


def test_smollm2_judges_through_llama_cpp(cli, tmp_path):
    """A real small LLM answers the few-shot rubric; what it answers off-rubric is counted, not guessed."""
    path = tmp_path / "d.jsonl"
    texts = [("cherry", "a photo of a cherry."), ("cherry", "a small red round fruit"),
             ("cherry", "grown in warm climates")]
    path.write_text("".join(json.dumps({"key": f"{c} #{i}", "kind": "descriptions", "first": c, "text": t}) + "\n"
                            for i, (c, t) in enumerate(texts)))
    records = tmp_path / "r.jsonl"
    res = cli("analyse-descriptions", path, "--judge", "smollm2-135m", "--records", records, "--json")
    assert res.code == 0, res.stderr
    src = res.json()["sources"][0]
    assert src["judged"] + src["unparseable"] == 3
    assert src["spurious"] + src["visual"] + src["non_visual"] == src["judged"]
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert all(isinstance(r["answer"], str) for r in rows)
    assert sum(r["label"] == "unparseable" for r in rows) == src["unparseable"]


def test_bad_input_is_one_error_line(cli, world, descriptions, tmp_path):
    template, hand, _ = descriptions
    assert_clean_error(cli("analyse-descriptions", tmp_path / "missing.jsonl"), "not found")
    assert_clean_error(cli("analyse-descriptions", template, "--judge", "no-such-llm"), "no-such-llm")
    no_placeholder = tmp_path / "judge.toml"
    no_placeholder.write_text('kind = "judge"\ntemplate = "Q: is \\"{class_name}\\" spurious?\\nA:"\n')
    assert_clean_error(cli("analyse-descriptions", template, "--judge", "template", "--judge-prompt",
                           no_placeholder), "{description}")
    lexicon = tmp_path / "lexicon.toml"
    lexicon.write_text('[visual]\nsmell = ["fragrant"]\n[non_visual]\nhabitat = ["soil"]\n')
    assert_clean_error(cli("analyse-descriptions", template, "--lexicon", lexicon), "smell")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"key": "k", "kind": "pairs", "first": "a", "second": "b", "text": "t"}) + "\n")
    assert_clean_error(cli("analyse-descriptions", pairs), "descriptions")
    assert_clean_error(cli("analyse-descriptions", f"x={template}", f"x={hand}"), "'x'")
    # A class the world does not have: refused before anything is judged.
    alien = tmp_path / "alien.jsonl"
    alien.write_text(json.dumps({"key": "k #0", "kind": "descriptions", "first": "kumquat", "text": "small"}) + "\n")
    assert_clean_error(cli("analyse-descriptions", alien, "--captions", world / "captions.jsonl", "--label",
                           "colour_shape", "--judge", "smollm2-135m"), "kumquat")
