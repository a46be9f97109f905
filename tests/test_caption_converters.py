"""`pcclip data coco` and `pcclip data cub`: the captions as the datasets ship them, into captions.jsonl."""

import json

import fixtures_datasets as fx
import pytest

from conftest import REPO, assert_clean_error
from pcclip_cli.data.datasets.json_stream import JsonObjectStream
from pcclip_cli.data.records import read_captions


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return fx.coco(tmp_path_factory.mktemp("coco"))


def _captions_by_image(doc) -> dict:
    out = {}
    for a in doc["annotations"]:
        out.setdefault(a["image_id"], []).append(" ".join(a["caption"].split()))
    return out


def test_coco_one_record_per_image_with_all_its_captions(cli, coco, tmp_path):
    out = tmp_path / "coco" / "captions.jsonl"
    doc = cli("data", "coco", coco["annotations"], coco["images"], out, "--split", "train", "--json").json()
    assert doc["records"] == doc["images"] == len(coco["ids"]) and doc["captions"] == 5 * len(coco["ids"])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    expected = _captions_by_image(coco["doc"])
    assert [r["id"] for r in records] == [str(i) for i in coco["ids"]]  # the images array's order
    for rec in records:
        assert set(rec) == {"id", "image", "caption", "split", "attributes"} and rec["split"] == "train"
        assert rec["attributes"]["captions"] == expected[int(rec["id"])]
        assert rec["caption"] == expected[int(rec["id"])][0]
        assert rec["image"].endswith(f"/train2017/{int(rec['id']):012d}.jpg") and not rec["image"].startswith("/")
    # The file reads as captions and as a manifest, with paths that resolve to the release's images.
    read = read_captions(out)
    assert [r.path for r in read] == [(coco["images"] / f"{i:012d}.jpg").resolve() for i in coco["ids"]]
    assert all(r.path.is_file() for r in read)


def test_coco_caption_choice_and_seeded_sample(cli, coco, tmp_path):
    def run(name, *args):
        cli("data", "coco", coco["annotations"], coco["images"], tmp_path / name, *args, "--json")
        return [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]

    expected = _captions_by_image(coco["doc"])
    every = run("all.jsonl", "--caption", "all")
    assert len(every) == 5 * len(coco["ids"]) and len({r["id"] for r in every}) == len(every)
    assert {r["caption"] for r in every} == {c for cs in expected.values() for c in cs}
    picked = run("random.jsonl", "--caption", "random", "--seed", "3")
    assert all(r["caption"] in expected[int(r["id"])] for r in picked)
    assert picked == run("random2.jsonl", "--caption", "random", "--seed", "3")
    assert any(r["caption"] != expected[int(r["id"])][0] for r in picked)  # 12 images: not all drew the first
    sample = run("s.jsonl", "--images", "5", "--seed", "1")
    assert len(sample) == 5 and sample == run("s2.jsonl", "--images", "5", "--seed", "1")
    assert [r["id"] for r in sample] != [r["id"] for r in run("s3.jsonl", "--images", "5", "--seed", "2")]
    ids = [int(r["id"]) for r in sample]
    assert ids == sorted(ids, key=coco["ids"].index)  # kept in the file's order


def test_coco_members_in_any_order(cli, coco, tmp_path):
    """JSON objects are unordered: annotations before images (a re-saved file) give the same output."""
    doc = coco["doc"]
    reordered = tmp_path / "reordered.json"
    reordered.write_text(json.dumps({"annotations": doc["annotations"], "info": doc["info"], "images": doc["images"]},
                                    indent=1))
    a = cli("data", "coco", coco["annotations"], coco["images"], tmp_path / "a.jsonl", "--images", "4", "--json")
    b = cli("data", "coco", reordered, coco["images"], tmp_path / "b.jsonl", "--images", "4", "--json")
    assert a.code == b.code == 0, b.stderr
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()


def test_json_stream_reads_elements_across_chunk_boundaries(coco):
    """A chunk smaller than any element: every element still decodes whole, equal to json.load's."""
    got = {}
    for key, value in JsonObjectStream(coco["annotations"], chunk_chars=7).members():
        got[key] = list(value) if key in ("images", "annotations", "licenses") else value
    assert got == json.loads(coco["annotations"].read_text())


@pytest.mark.parametrize("content, fragment", [
    ({"info": {}, "annotations": []}, "no 'images' array"),
    ({"images": [], "licenses": []}, "no 'annotations' array"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1]}]},
     "give a captions file"),
    ([1, 2, 3], "does not hold a JSON object"),
    ({"images": {"id": 1}, "annotations": []}, "\"images\" is not an array"),
])
def test_not_coco_is_one_error_naming_the_file(cli, coco, tmp_path, content, fragment):
    bad = tmp_path / "instances.json"
    bad.write_text(json.dumps(content))
    out = tmp_path / "out" / "captions.jsonl"
    r = cli("data", "coco", bad, coco["images"], out)
    assert_clean_error(r, str(bad), fragment)
    assert not (tmp_path / "out").exists()


def test_truncated_annotations_are_one_error(cli, coco, tmp_path):
    cut = tmp_path / "cut.json"
    cut.write_text(coco["annotations"].read_text()[:-300])
    r = cli("data", "coco", cut, coco["images"], tmp_path / "c.jsonl")
    assert_clean_error(r, str(cut), "not a valid COCO annotations file")
    assert not (tmp_path / "c.jsonl").exists()


def test_missing_image_stops_or_is_skipped(cli, coco, tmp_path):
    import shutil

    images = tmp_path / "train2017"
    shutil.copytree(coco["images"], images)
    gone = images / f"{coco['ids'][3]:012d}.jpg"
    gone.unlink()
    out = tmp_path / "captions.jsonl"
    r = cli("data", "coco", coco["annotations"], images, out)
    assert_clean_error(r, str(gone), "--on-bad-image skip")
    assert not out.exists() and not list(tmp_path.glob(".captions.jsonl*"))
    doc = cli("data", "coco", coco["annotations"], images, out, "--on-bad-image", "skip", "--json").json()
    assert doc["images"] == len(coco["ids"]) - 1 and doc["missing_images"] == 1
    assert str(coco["ids"][3]) not in {r.id for r in read_captions(out)}


def test_coco_to_a_trained_model_and_a_rank_task(cli, coco, tmp_path, one_torch_thread):
    """The README's path from the files as COCO ships them: convert, generate, filter, train, rank --task."""
    work = tmp_path / "coco"
    caps = work / "captions.jsonl"
    assert cli("data", "coco", coco["annotations"], coco["images"], caps, "--images", "10", "--json").code == 0
    comps, clean = work / "comps.jsonl", work / "clean.jsonl"
    gen = cli("generate", "--llm", "template", "--captions", caps, "--prompt", "coco", "--pairs", "60",
              "--out", comps, "--json")
    assert gen.code == 0, gen.stderr
    assert gen.json()["generated"] == 60
    filt = cli("filter", comps, "--out", clean, "--json")
    assert filt.code == 0, filt.stderr
    kept = [json.loads(line) for line in clean.read_text().splitlines()]
    assert kept and {r["first"] for r in kept} <= {r.id for r in read_captions(caps)}
    run = work / "run"
    trained = cli("train", "--model", "pcclip-micro", "--comparatives", clean, "--captions", caps, "--epochs", "1",
                  "--batch-size", "16", "--lr", "1e-3", "--out", run, "--json")
    assert trained.code == 0, trained.stderr
    assert trained.json()["epochs"] == 1
    task = work / "coco-differences.toml"
    task.write_text('name = "coco-differences"\nkind = "texts"\nmanifest = "captions.jsonl"\n'
                    'comparatives = "clean.jsonl"\n')
    ranked = cli("rank", "--task", task, "--model", run, "--seeds", "2", "--pairs", "10", "--json")
    assert ranked.code == 0, ranked.stderr
    doc = ranked.json()
    assert doc["n_pairs"] == 20 and doc["task"]["records"] == len(kept)
    assert 0.0 <= doc["accuracy"]["mean"] <= 1.0


# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    return fx.cub(tmp_path_factory.mktemp("cub"))


def test_cub_captions_carry_cub_ids_splits_and_ten_captions(cli, cub, tmp_path):
    out = tmp_path / "cub"
    doc = cli("data", "cub", cub / "CUB_200_2011", cub, out, "--json").json()
    assert doc["records"] == 16 and doc["text"] == str(cub / "text_c10")
    records = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    index = dict(line.split() for line in (cub / "CUB_200_2011" / "images.txt").read_text().splitlines())
    split = dict(line.split() for line in (cub / "CUB_200_2011" / "train_test_split.txt").read_text().splitlines())
    for rec in records:
        rel = index[rec["id"]]
        lines = (cub / "text_c10" / rel).with_suffix(".txt").read_text().splitlines()
        assert rec["attributes"]["captions"] == lines and rec["caption"] == lines[0]
        assert rec["split"] == ("train" if split[rec["id"]] == "1" else "test")
        assert rec["attributes"]["class"] == rel.split("/")[0]
        assert (out / rec["image"]).resolve() == (cub / "CUB_200_2011" / "images" / rel).resolve()
    test_only = cli("data", "cub", cub, cub / "text_c10", tmp_path / "t.jsonl", "--split", "test", "--images", "5",
                    "--json").json()
    assert test_only["records"] == 5
    assert {r.split for r in read_captions(tmp_path / "t.jsonl")} == {"test"}


def test_cub_captions_feed_the_cub_differences_task(cli, cub, tmp_path):
    """examples/tasks/cub-differences.toml reads DATA_ROOT/cub/captions.jsonl as the converter writes it."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(cub, root)
    caps = root / "cub" / "captions.jsonl"
    assert cli("data", "cub", root, root, caps, "--split", "test", "--json").code == 0
    comps = root / "cub" / "comparatives.jsonl"
    gen = cli("generate", "--llm", "template", "--captions", caps, "--prompt", "cub", "--pairs", "30", "--out", comps,
              "--json")
    assert gen.code == 0, gen.stderr
    ranked = cli("rank", "--task", REPO / "examples" / "tasks" / "cub-differences.toml", "--data-root", root,
                 "--model", "pcclip-micro", "--seeds", "2", "--pairs", "8", "--json")
    assert ranked.code == 0, ranked.stderr
    assert ranked.json()["task"]["records"] == 30


@pytest.mark.parametrize("remove", ["images.txt", "train_test_split.txt", "image_class_labels.txt", "classes.txt"])
def test_cub_index_file_missing_is_one_error(cli, cub, tmp_path, remove):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(cub, root)
    (root / "CUB_200_2011" / remove).unlink()
    out = tmp_path / "out.jsonl"
    r = cli("data", "cub", root, root, out)
    assert_clean_error(r, str(root / "CUB_200_2011" / remove))
    assert not out.exists()


def test_cub_missing_image_or_caption_file(cli, cub, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(cub, root)
    first = (root / "CUB_200_2011" / "images.txt").read_text().split()[1]
    (root / "text_c10" / first).with_suffix(".txt").unlink()
    out = tmp_path / "out.jsonl"
    assert_clean_error(cli("data", "cub", root, root, out), "no CUB caption file")
    second = (root / "CUB_200_2011" / "images.txt").read_text().splitlines()[1].split()[1]
    (root / "text_c10" / first).with_suffix(".txt").write_text("a bird\n")
    (root / "CUB_200_2011" / "images" / second).unlink()
    assert_clean_error(cli("data", "cub", root, root, out), str(root / "CUB_200_2011" / "images" / second))
    assert not out.exists()
    doc = cli("data", "cub", root, root, out, "--on-bad-image", "skip", "--json").json()
    assert doc["records"] == 15 and doc["missing_images"] == 1


@pytest.mark.parametrize("args, fragment", [
    (["--images", "100"], "has only 12 images"),
    (["--images", "0"], "--images must be at least 1"),
])
def test_bad_sample_sizes(cli, coco, tmp_path, args, fragment):
    r = cli("data", "coco", coco["annotations"], coco["images"], tmp_path / "x.jsonl", *args)
    assert_clean_error(r, fragment)
    assert not (tmp_path / "x.jsonl").exists()
