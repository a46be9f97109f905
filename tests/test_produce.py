"""The produce world: real-named classes with stated looks, confusable groups, settings, tasks and the oracle."""

import json
import random

import pytest

from conftest import assert_clean_error
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.data import produce
from pcclip_cli.data.produce import BY_NAME, CLASSES, ProduceConfig, build_world, describe_difference
from pcclip_cli.data.shapes import load_world


@pytest.fixture(scope="module")
def pworld(tmp_path_factory):
    out = tmp_path_factory.mktemp("produce") / "p150"
    build_world(out, ProduceConfig(images=150, seed=0))
    return out


def test_world_has_every_class_with_its_looks(pworld):
    root, records = load_world(pworld)
    assert len(CLASSES) >= 20 and len(records) == 150
    assert {r["attributes"]["produce"] for r in records} == set(BY_NAME)
    for rec in records:
        a, cls = rec["attributes"], BY_NAME[rec["attributes"]["produce"]]
        assert (root / rec["image"]).exists() and rec["split"] in ("train", "test")
        assert a["size"] == cls.size and a["shape"] == cls.shape and a["pattern"] == cls.pattern
        assert a["colour"] in (cls.colour, cls.variant) and set(a["parts"]) <= set(cls.parts)
        assert a["objects"] == [{"colour": a["colour"], "size": a["size"], "shape": a["shape"]}]
    manifest = [json.loads(x) for x in (root / "classes/produce.jsonl").read_text().splitlines()]
    assert len(manifest) == 150 and {m["label"] for m in manifest} == set(BY_NAME)


def test_confusable_groups_differ_in_one_stated_attribute():
    def differing(x, y):
        a, b = BY_NAME[x], BY_NAME[y]
        return {k for k in ("colour", "size", "shape", "pattern") if getattr(a, k) != getattr(b, k)}

    assert differing("cherry", "apple") == differing("tomato", "apple") == {"size"}
    assert differing("lemon", "lime") == differing("red pepper", "green pepper") == {"colour"}
    assert differing("cucumber", "zucchini") == {"pattern"} and differing("carrot", "parsnip") == {"colour"}
    text = produce.class_comparative("cherry", "apple", random.Random(0))
    assert "smaller" in text or "tinier" in text


def test_name_share_sets_how_many_captions_name_the_item(tmp_path):
    def named(share):
        _, recs = load_world(build_world(tmp_path / str(share), ProduceConfig(images=80, name_share=share))["path"])
        # "orange" is also a colour word, so its captions are left out of the count.
        recs = [r for r in recs if r["attributes"]["produce"] != "orange"]
        return sum(r["attributes"]["produce"] in r["caption"] for r in recs) / len(recs)

    assert named(0.0) == 0 and named(1.0) == 1 and 0.25 < named(0.5) < 0.75


def test_bad_settings_are_refused(cli, tmp_path):
    with pytest.raises(PcclipError, match="variation"):
        ProduceConfig(variation=2.0)
    result = cli("data", "produce", tmp_path / "w", "--name-share", "1.5")
    assert_clean_error(result, "--name-share")
    assert not (tmp_path / "w").exists()


def test_cli_data_produce_json_is_deterministic(cli, tmp_path):
    a = cli("data", "produce", tmp_path / "a", "--images", "30", "--json")
    b = cli("data", "produce", tmp_path / "b", "--images", "30", "--json")
    assert a.code == b.code == 0, a.stderr
    assert a.json()["images"] == 30 and len(a.json()["classes"]) == len(CLASSES)
    assert (tmp_path / "a/captions.jsonl").read_text() == (tmp_path / "b/captions.jsonl").read_text()
    assert (tmp_path / "a/images/img_000007.png").read_bytes() == (tmp_path / "b/images/img_000007.png").read_bytes()
    assert (tmp_path / "a/vocabulary.toml").exists()


def test_task_files_load_on_the_test_split(pworld):
    from pcclip_cli.data.tasks import load_task

    for name in ("size", "colour", "pattern"):
        task = load_task(pworld / "tasks" / f"{name}.toml")
        assert len(task.groups) == 2 and all(task.groups.values())
        assert len(task.pairs[0]["paraphrases"]) >= 5


_STOPWORDS = set("a an the of in on to and or is are it its this that than from with by for as at be into "
                 "while whereas but not no very much just only two".split())


def _words(text):
    return "".join(c.lower() if c.isalnum() or c == "'" else " " for c in text).split()


def test_held_out_paraphrases_share_little_with_the_oracle(pworld):
    """As for the shapes world: each paraphrase shares at most one content word (attribute values and
    first/second aside) with the oracle's image-pair and class comparatives and no run of four words."""
    from pcclip_cli.data.tasks import load_task

    _, records = load_world(pworld)
    rng = random.Random(0)
    oracle = [describe_difference(x["attributes"], y["attributes"], rng) for x in records for y in records[:40]]
    oracle += [produce.class_comparative(a.name, b.name, rng) for a in CLASSES for b in CLASSES if a != b]
    words = {w for t in oracle for w in _words(t)}
    grams = {tuple(ws[i:i + 4]) for t in oracle for ws in [_words(t)] for i in range(len(ws) - 3)}
    free = _STOPWORDS | set(produce.RGB) | {"small", "medium", "large", "first", "second"}
    checked = 0
    for name in ("size", "colour", "pattern"):
        task = load_task(pworld / "tasks" / f"{name}.toml")
        for text in [t for p in task.pairs for pair in p["paraphrases"] for t in pair]:
            ws = _words(text)
            assert len({w for w in ws if w not in free} & words) <= 1, text
            assert not {tuple(ws[i:i + 4]) for i in range(len(ws) - 3)} & grams, text
            checked += 1
    assert checked >= 30
    # The check is not vacuous: an oracle sentence fails it.
    ws = _words(oracle[1])
    assert {tuple(ws[i:i + 4]) for i in range(len(ws) - 3)} & grams


def test_oracle_pairs_audit_clean_with_the_world_vocabulary(cli, pworld, tmp_path):
    out = tmp_path / "cmp.jsonl"
    gen = cli("generate", "--llm", "template", "--captions", pworld / "captions-train.jsonl", "--pairs", "60",
              "--out", out)
    assert gen.code == 0, gen.stderr
    rec = json.loads(out.read_text().splitlines()[0])
    assert "first" in rec["text"] and rec["first"] != rec["second"]
    audit = cli("audit", out, "--captions", pworld / "captions.jsonl", "--vocabulary", pworld / "vocabulary.toml",
                "--json")
    assert audit.code == 0, audit.stderr
    report = audit.json()
    assert report["statements"] > 60 and report["precision"] == 1.0


def test_models_lists_produce_clip(cli):
    result = cli("models", "--json")
    assert result.code == 0, result.stderr
    names = [m["name"] for m in result.json()["shapes"]]
    assert "produce-clip" in names


def _class_texts(path, rows):
    path.write_text("".join(json.dumps({"kind": k, "first": a, "second": b, "text": t}) + "\n" for k, a, b, t in rows))
    return path


def test_class_texts_audit_against_the_world(cli, pworld, tmp_path):
    texts = _class_texts(tmp_path / "cls.jsonl", [
        ("classes", "cherry", "apple", produce.class_comparative("cherry", "apple", random.Random(0))),
        ("classes", "lime", "lemon", "A lime is yellow while a lemon is green."),
        ("descriptions", "banana", None, produce.class_description("banana", 0)),
        ("descriptions", "blueberry", None, "A blueberry is a large red fruit."),
    ])
    result = cli("audit", texts, "--classes", "--captions", pworld / "captions.jsonl", "--vocabulary",
                 pworld / "vocabulary.toml", "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["records"] == 4 and report["swapped"] == 2 and report["wrong"] == 2
    assert 0 < report["precision"] < 1


def test_class_texts_stating_nothing_are_counted_and_dropped(cli, pworld, tmp_path):
    texts = _class_texts(tmp_path / "d.jsonl", [
        ("descriptions", "kiwi", None, produce.class_description("kiwi", 1)),
        ("descriptions", "plum", None, "I am not sure what you mean by that question, sorry."),
    ])
    out = tmp_path / "kept.jsonl"
    result = cli("filter", texts, "--rules", pworld / "filter-classes.toml", "--out", out, "--json")
    assert result.code == 0, result.stderr
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    assert [k["first"] for k in kept] == ["kiwi"]
    assert "states-nothing" in json.dumps(result.json())


def test_a_classes_file_naming_an_unknown_class_is_one_error(cli, pworld, tmp_path):
    texts = _class_texts(tmp_path / "bad.jsonl", [("classes", "cherry", "durian", "A cherry is smaller.")])
    result = cli("classify", "--dataset", pworld / "classes/produce.jsonl", "--comparative", texts, "--model",
                 "pcclip-micro")
    assert_clean_error(result, "durian")
    audit = cli("audit", texts, "--classes", "--captions", pworld / "captions.jsonl")
    assert_clean_error(audit, "durian")
