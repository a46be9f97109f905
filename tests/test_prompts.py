"""Prompt templates: every shipped prompt loads and renders; bad placeholders fail before any LLM call."""

from __future__ import annotations

import pytest

from pcclip_cli.core.errors import PcclipError
from pcclip_cli.generation.prompts import PLACEHOLDERS, list_prompts, load_prompt, make_prompt


def test_shipped_prompts_cover_the_paper_and_the_shapes_world():
    rows = {r["name"]: r["kind"] for r in list_prompts()}
    assert rows["coco"] == "pairs" and rows["cub"] == "pairs" and rows["shapes"] == "pairs"
    assert rows["classes"] == "classes" and rows["descriptions"] == "descriptions"
    assert "attributes" not in rows and "filter_rules" not in rows
    for name, kind in rows.items():
        p = load_prompt(name)
        values = {k: f"<{k}>" for k in PLACEHOLDERS[kind]}
        text = p.render(**values)
        assert all(v in text for v in values.values()), name
        assert text.rstrip().endswith("A:"), name  # completion prompts end where the answer starts
        assert p.stop == ("\n" + "Q:",)


def test_coco_prompt_is_the_papers_four_shot_prompt():
    text = load_prompt("coco").render(first_caption="a dog on a sofa", second_caption="a cat in a box")
    assert text.count("Q: What is the visual difference") == 5
    assert 'an image captioned with "a photo of a black, small cat"' in text
    assert text.endswith('captioned with "a dog on a sofa" and an image captioned with "a cat in a box"?\nA:')


def test_prompt_hash_depends_on_template_not_comments(tmp_path):
    a = tmp_path / "a.toml"
    b = tmp_path / "b.toml"
    a.write_text('kind = "classes"\ntemplate = "Q: {first} vs {second}?\\nA:"\n')
    b.write_text('# a comment\ndescription = "x"\nkind = "classes"\ntemplate = "Q: {first} vs {second}?\\nA:"\n')
    assert load_prompt(a).sha256 == load_prompt(b).sha256
    assert load_prompt(a).sha256 != load_prompt("classes").sha256


@pytest.mark.parametrize("template, fragment", [
    ("{first_caption} and {second_captoin}", "unknown placeholder {second_captoin}"),
    ("only {first_caption}", "never uses {second_caption}"),
    ("{first_caption} {second_caption} {", "malformed template"),
    ("{first_caption!r} {second_caption}", "plain name"),
])
def test_bad_placeholders_are_errors(template, fragment):
    with pytest.raises(PcclipError, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        make_prompt("x", "pairs", template)


def test_txt_prompt_takes_kind_and_literal_braces(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("Describe {{literally}} how {class_name} looks.\nA:\n")
    p = load_prompt(path, "descriptions")
    assert p.render(class_name="a heron") == "Describe {literally} how a heron looks.\nA:"
    with pytest.raises(PcclipError, match="needs --kind"):
        load_prompt(path)
    with pytest.raises(PcclipError, match="unknown placeholder .class_name. for kind pairs"):
        load_prompt(path, "pairs")


def test_unknown_names_and_files():
    with pytest.raises(PcclipError, match="unknown prompt 'cocoa'.*coco"):
        load_prompt("cocoa")
    with pytest.raises(PcclipError, match="not found"):
        load_prompt("/nonexistent/p.toml")
    with pytest.raises(PcclipError, match="kind pairs, not classes"):
        load_prompt("coco", "classes")


def test_render_without_a_value_is_an_error():
    with pytest.raises(PcclipError, match="second_caption"):
        load_prompt("cub").render(first_caption="a bird")
