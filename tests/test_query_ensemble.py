"""Attribute queries as prompt ensembles: expansion, template files, and the averaged vector `rank` and
`retrieve` share."""

import numpy as np
import pytest

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.data.attributes import (
    attribute_ensemble,
    attribute_forms,
    ensemble_vector,
    ensemble_vectors,
    load_query_templates,
)


def test_a_bare_word_expands_into_comparative_and_descriptive_forms():
    ens = attribute_ensemble("red")
    shipped = load_query_templates()
    assert ens.expanded and ens.templates == "default"
    assert len(ens.sentences) == len(shipped.templates)  # red is a colour: the {kind} template is kept too
    assert ens.text == "The first image shows something redder than the second image."
    assert "The first image is red, while the second is not." in ens.sentences
    assert "The first image shows a red object and the second an object of a different colour." in ens.sentences
    assert any("{" in t and "{cmp}" not in t and "first" not in t for t in shipped.templates)  # single-image forms
    for s in ens.sentences:
        assert "{" not in s and ("red" in s)


@pytest.mark.parametrize(("typed", "forms"), [
    ("blue", ("blue", "bluer")), ("bluer", ("blue", "bluer")), ("larger", ("large", "larger")),
    ("Large", ("large", "larger")), ("bigger", ("big", "bigger")), ("orange", ("orange", "more orange")),
    ("shiny", ("shiny", "more shiny")), ("more shiny", ("shiny", "more shiny")), ("shinier", ("shinier", "shinier")),
])
def test_attribute_forms(typed, forms):
    assert attribute_forms(typed) == forms


def test_words_without_a_kind_skip_kind_templates_and_sentences_pass_through():
    shiny = attribute_ensemble("shiny")
    assert len(shiny.sentences) == len(load_query_templates().templates) - 1
    assert not any("different" in s for s in shiny.sentences)
    sentence = "The first image has a redder shape than the second image."
    given = attribute_ensemble(f"  {sentence} ")
    assert given.sentences == (sentence,) and not given.expanded
    with pytest.raises(PcclipError, match="empty attribute"):
        attribute_ensemble("  ")


def test_the_single_sentence_set_is_the_old_expansion():
    from pcclip_cli.data.attributes import expand_attribute

    for word in ("larger", "blue", "orange", "small", "shiny"):
        assert attribute_ensemble(word, "single-sentence").sentences == (expand_attribute(word).text,)


def test_user_template_files_toml_and_txt(tmp_path):
    toml = tmp_path / "mine.toml"
    toml.write_text('[a]\ntemplates = ["a {word} thing", "{cmp} than that"]\n[b]\ntemplates = ["the {kind} is {word}"]\n')
    ens = attribute_ensemble("green", toml)
    assert ens.sentences == ("a green thing", "greener than that", "the colour is green") and ens.templates == "mine"
    txt = tmp_path / "mine.txt"
    txt.write_text("# one per line\na {word} thing\n\nsomething {cmp}\n")
    assert attribute_ensemble("small", txt).sentences == ("a small thing", "something smaller")


@pytest.mark.parametrize(("content", "fragment"), [
    ('templates = ["a photo of something"]\n', "no {word} or {cmp}"),
    ('templates = ["a {word} {colour}"]\n', "unknown placeholder {colour}"),
    ('templates = ["a {word"]\n', "malformed template"),
    ('templates = ["a {word}"\n', "malformed TOML"),
    ('prompts = ["a {word}"]\n', "no `templates = [...]` list"),
    ("templates = []\n", "no query templates"),
    ('templates = "a {word}"\n', "must be a list"),
])
def test_bad_template_files_are_refused(tmp_path, content, fragment):
    path = tmp_path / "q.toml"
    path.write_text(content)
    with pytest.raises(DataError, match=None) as exc:
        attribute_ensemble("blue", path)
    assert fragment in str(exc.value)


def test_the_query_vector_is_the_normalised_mean_of_unit_text_embeddings(micro_clip):
    ens = attribute_ensemble("yellow")
    each = micro_clip.encode_texts(list(ens.sentences))
    assert np.allclose(np.linalg.norm(each, axis=1), 1, atol=1e-5)
    mean = each.mean(axis=0)
    vec = ensemble_vector(micro_clip, ens)
    assert np.linalg.norm(vec) == pytest.approx(1, abs=1e-5)
    assert np.allclose(vec, mean / np.linalg.norm(mean), atol=1e-5)
    # Several ensembles in one call give the same vectors as one at a time, in order.
    many = ensemble_vectors(micro_clip, [attribute_ensemble(w) for w in ("red", "larger", "shiny")])
    assert many.shape == (3, micro_clip.embed_dim)
    assert np.allclose(many[1], ensemble_vector(micro_clip, attribute_ensemble("larger")), atol=1e-5)
    # A one-sentence query is that sentence's own embedding.
    one = attribute_ensemble("larger", "single-sentence")
    assert np.allclose(ensemble_vector(micro_clip, one), micro_clip.encode_texts([one.text])[0], atol=1e-5)


def test_rank_and_retrieve_use_the_same_query(cli, world, tmp_path):
    from pcclip_cli.retrieval import build_index

    imgs = [str(world / "images" / f"img_00000{i}.png") for i in range(4)]
    build_index(imgs, tmp_path / "idx", model="pcclip-micro")
    txt = tmp_path / "q.txt"
    txt.write_text("a {word} shape\nthe first looks {cmp}\n")
    ranked = cli("rank", *imgs, "purple", "--model", "pcclip-micro", "--query-templates", txt, "--json").json()
    found = cli("retrieve", "--index", tmp_path / "idx", "--attribute", "purple", "--query-templates", txt,
                "--json").json()
    assert ranked["sentences"] == found["query"]["sentences"] == ["a purple shape", "the first looks more purple"]
    assert [r["image"] for r in ranked["order"]] == [r["path"] for r in found["results"]]
    assert np.allclose([r["score"] for r in ranked["order"]], [r["score"] for r in found["results"]], atol=1e-5)
