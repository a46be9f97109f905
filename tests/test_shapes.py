"""The shapes world: valid, deterministic, varied, with manifests and task files, written atomically."""

import json
import random
from collections import Counter

import pytest
from PIL import Image

from pcclip_cli.core.config import load_toml
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.data.shapes import COLOURS, SHAPES, WorldConfig, build_world, describe_difference, load_world


def test_world_is_complete_and_valid(world):
    root, records = load_world(world)
    assert len(records) == 60
    for rec in records:
        img = Image.open(root / rec["image"])
        assert img.size == (64, 64) and img.mode == "RGB"
        attrs = rec["attributes"]
        assert attrs["count"] in (1, 2) and len(attrs["objects"]) == attrs["count"]
        for obj in attrs["objects"]:
            assert obj["colour"] in COLOURS and obj["shape"] in SHAPES
            assert obj["colour"] in rec["caption"] and obj["shape"] in rec["caption"]
        assert rec["split"] in ("train", "test")
    splits = Counter(r["split"] for r in records)
    assert splits["train"] > splits["test"] > 0
    for split in ("train", "test"):
        rows = [json.loads(x) for x in (root / f"captions-{split}.jsonl").read_text().splitlines()]
        assert [r["id"] for r in rows] == [r["id"] for r in records if r["split"] == split]


def test_captions_vary_their_phrasing(world):
    _, records = load_world(world)
    skeletons = set()
    for rec in records:
        if rec["attributes"]["count"] == 1:
            o = rec["attributes"]["objects"][0]
            skeletons.add(rec["caption"].replace(o["colour"], "C").replace(o["shape"], "S"))
    assert len(skeletons) >= 8


def test_same_seed_same_world_different_seed_different(tmp_path):
    a = build_world(tmp_path / "a", WorldConfig(images=12, seed=3))
    b = build_world(tmp_path / "b", WorldConfig(images=12, seed=3))
    c = build_world(tmp_path / "c", WorldConfig(images=12, seed=4))
    assert a["images"] == b["images"] == 12
    assert (tmp_path / "a/captions.jsonl").read_text() == (tmp_path / "b/captions.jsonl").read_text()
    assert (tmp_path / "a/images/img_000005.png").read_bytes() == (tmp_path / "b/images/img_000005.png").read_bytes()
    assert (tmp_path / "a/captions.jsonl").read_text() != (tmp_path / "c/captions.jsonl").read_text()
    assert c["reused"] is False


def test_class_manifests_cover_single_object_images(world):
    _, records = load_world(world)
    singles = [r for r in records if r["attributes"]["count"] == 1]
    lines = [json.loads(x) for x in (world / "classes/shape.jsonl").read_text().splitlines()]
    assert len(lines) == len(singles)
    assert all((world / "classes" / ln["image"]).exists() for ln in lines)
    assert {ln["label"] for ln in lines} <= set(SHAPES)


def test_task_files_parse_and_use_unseen_phrasing(world):
    _, records = load_world(world)
    captions = " ".join(r["caption"] for r in records)
    for name in ("size.toml", "colour.toml", "attributes.toml"):
        task = load_toml(world / "tasks" / name)
        assert task["kind"] in ("groups", "attributes")
        assert (world / "tasks" / task["manifest"]).resolve() == (world / "captions.jsonl").resolve()
        sentence = task.get("template") or task["pairs"][0]["text"]
        assert sentence.split(",")[0] not in captions


def test_rebuild_reuses_and_foreign_directory_is_refused(tmp_path):
    build_world(tmp_path / "w", WorldConfig(images=5, seed=0))
    again = build_world(tmp_path / "w", WorldConfig(images=5, seed=0))
    assert again["reused"] is True
    with pytest.raises(PcclipError, match="different shapes world"):
        build_world(tmp_path / "w", WorldConfig(images=6, seed=0))
    (tmp_path / "other").mkdir()
    (tmp_path / "other/notes.txt").write_text("mine")
    with pytest.raises(PcclipError, match="not a shapes world"):
        build_world(tmp_path / "other", WorldConfig(images=5))
    assert (tmp_path / "other/notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_difference_texts_name_what_differs():
    rng = random.Random(0)
    a = {"count": 1, "objects": [{"colour": "red", "size": "large", "shape": "circle"}]}
    b = {"count": 1, "objects": [{"colour": "blue", "size": "small", "shape": "circle"}]}
    text = describe_difference(a, b, rng)
    assert "red" in text and "blue" in text
    assert any(w in text for w in ("bigger", "larger", "greater", "smaller", "tinier", "less large"))
    assert "circle" not in text


def test_difference_texts_vary_and_never_state_a_task_sentence(world):
    _, records = load_world(world)
    tasks = [load_toml(world / "tasks" / n) for n in ("size.toml", "colour.toml")]
    task_sentences = {t["pairs"][0]["text"].lower().rstrip(".") for t in tasks}
    rng = random.Random(0)
    texts = {describe_difference(x["attributes"], y["attributes"], rng) for x in records for y in records[:10]}
    assert len(texts) > 200
    for text in texts:
        assert not any(s in text.lower() for s in task_sentences), text


def test_cli_data_shapes_json(cli, tmp_path):
    result = cli("data", "shapes", tmp_path / "w", "--images", "8", "--seed", "1", "--json")
    assert result.code == 0, result.stderr
    summary = result.json()
    assert summary["images"] == 8 and summary["path"] == str(tmp_path / "w")
    assert len((tmp_path / "w/captions.jsonl").read_text().splitlines()) == 8


def test_cli_data_shapes_for_people_shows_progress_and_summary(cli, tmp_path):
    result = cli("data", "shapes", tmp_path / "w", "--images", "6")
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert "wrote 6 images" in result.stderr and "drawing shapes" in result.stderr


_STOPWORDS = set("a an the of in on to and or is are it its this that than from with by for as at be into "
                 "while whereas but not no very much just only".split())


def _words(text: str) -> list[str]:
    return [w for w in "".join(c.lower() if c.isalnum() or c == "'" else " " for c in text).split()]


def _paraphrases(world) -> dict[str, list[str]]:
    from pcclip_cli.data.tasks import load_task

    out = {}
    for name in ("size", "colour", "attributes", "count"):
        task = load_task(world / "tasks" / f"{name}.toml")
        texts = list(task.templates) + [t for p in task.pairs for pair in p["paraphrases"] for t in pair]
        out[name] = [t.replace("{first}", " ").replace("{second}", " ") for t in texts]
    return out


def test_held_out_paraphrases_share_little_with_the_oracle_comparatives(world):
    """Each shapes task carries >= 5 paraphrases whose words and sentence shapes the training comparatives
    (the oracle's, with and without relation sentences) do not use: at most one shared content word each
    (attribute values such as 'yellow', and 'first'/'second', which every comparison needs, do not count), and
    no shared run of four words."""
    from pcclip_cli.data.shapes import SIZES

    _, records = load_world(world)
    rng = random.Random(0)
    oracle = [describe_difference(x["attributes"], y["attributes"], rng, relations=rel)
              for rel in (False, True) for x in records for y in records]
    oracle_words = {w for t in oracle for w in _words(t)}
    oracle_4grams = {tuple(ws[i:i + 4]) for t in oracle for ws in [_words(t)] for i in range(len(ws) - 3)}
    free = _STOPWORDS | set(COLOURS) | set(SHAPES) | set(SIZES) | {"first", "second"}
    worst = 0
    for task, texts in _paraphrases(world).items():
        assert len(texts) >= 10 if task != "attributes" else len(texts) >= 5, task
        for text in texts:
            ws = _words(text)
            shared = {w for w in ws if w not in free} & oracle_words
            worst = max(worst, len(shared))
            assert len(shared) <= 1, (task, text, shared)
            grams = {tuple(ws[i:i + 4]) for i in range(len(ws) - 3)}
            assert not grams & oracle_4grams, (task, text, grams & oracle_4grams)
    assert worst <= 1


def test_the_overlap_check_catches_an_oracle_phrasing(world):
    """The check above is not vacuous: an oracle sentence itself fails it."""
    _, records = load_world(world)
    rng = random.Random(0)
    oracle = [describe_difference(x["attributes"], y["attributes"], rng) for x in records[:20] for y in records[:20]]
    sizes = [t for t in oracle if "bigger" in t or "larger" in t]
    ws = _words(sizes[0])
    oracle_4grams = {tuple(w[i:i + 4]) for t in oracle for w in [_words(t)] for i in range(len(w) - 3)}
    assert {tuple(ws[i:i + 4]) for i in range(len(ws) - 3)} & oracle_4grams
