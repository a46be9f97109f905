"""The shipped paper task files read local dataset layouts (AwA2, CUB) and name what they miss."""

import json

import pytest

from conftest import REPO
from pcclip_cli.data.datasets.base import load_dataset
from pcclip_cli.data.records import read_captions
from pcclip_cli.data.tasks import load_task

TASKS = REPO / "examples" / "tasks"


def save_jpg(src, dest):
    from PIL import Image

    dest.parent.mkdir(parents=True, exist_ok=True)
    Image.open(src).convert("RGB").save(dest, format="JPEG")


@pytest.fixture(scope="module")
def awa2(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("awa2")
    base = root / "Animals_with_Attributes2"
    classes = ["grizzly+bear", "killer+whale", "dalmatian"]
    predicates = ["black", "white", "smelly", "longleg", "furry", "fish"]
    matrix = ["1 0 1 1 1 0", "1 1 0 0 0 1", "1 1 1 1 1 0"]
    base.mkdir(parents=True)
    (base / "classes.txt").write_text("".join(f"{i + 1}\t{c}\n" for i, c in enumerate(classes)))
    (base / "predicates.txt").write_text("".join(f"{i + 1}\t{p}\n" for i, p in enumerate(predicates)))
    (base / "predicate-matrix-binary.txt").write_text("\n".join(matrix) + "\n")
    images = [r.path for r in read_captions(world / "captions.jsonl")[:12]]
    for k, img in enumerate(images):
        save_jpg(img, base / "JPEGImages" / classes[k % 3] / f"{classes[k % 3]}_{k:04d}.jpg")
    return root


@pytest.fixture(scope="module")
def cub(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("cub")
    base = root / "CUB_200_2011"
    recs = read_captions(world / "captions.jsonl")[:8]
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    lines = {"images": [], "labels": [], "split": []}
    for k, rec in enumerate(recs, start=1):
        rel = f"{classes[k % 2]}/{classes[k % 2].split('.')[1]}_{k}.jpg"
        save_jpg(rec.path, base / "images" / rel)
        lines["images"].append(f"{k} {rel}")
        lines["labels"].append(f"{k} {k % 2 + 1}")
        lines["split"].append(f"{k} {k % 2}")
    (base / "images.txt").write_text("\n".join(lines["images"]) + "\n")
    (base / "image_class_labels.txt").write_text("\n".join(lines["labels"]) + "\n")
    (base / "train_test_split.txt").write_text("\n".join(lines["split"]) + "\n")
    (base / "classes.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    # the captions and LLM differences the cub-differences task reads
    (root / "cub").mkdir()
    caps = [{"id": str(k), "image": f"../CUB_200_2011/images/{line.split()[1]}", "caption": r.caption}
            for k, (line, r) in enumerate(zip(lines["images"], recs, strict=True), start=1)]
    (root / "cub" / "captions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in caps))
    comps = [{"kind": "pairs", "first": str(a), "second": str(b), "text": f"The first bird differs from bird {b}."}
             for a in range(1, 5) for b in range(5, 9)]
    (root / "cub" / "comparatives.jsonl").write_text("".join(json.dumps(c) + "\n" for c in comps))
    return root


def test_awa2_task_excludes_and_renames_predicates(cli, awa2):
    task = load_task(TASKS / "awa2-attributes.toml", awa2)
    assert {a for s in task.attribute_sets for a in s} == {"black", "white", "long legs", "furry"}
    out = cli("rank", "--task", TASKS / "awa2-attributes.toml", "--data-root", awa2, "--model", "pcclip-micro",
              "--seeds", 2, "--pairs", 10, "--json").json()
    assert out["n_pairs"] == 20 and out["task"]["dataset"] == "awa2"
    for ex in out["examples"]:
        assert "smelly" not in ex["text"] and "fish" not in ex["text"] and "longleg" not in ex["text"]


def test_cub_dataset_and_differences_task(cli, cub):
    ds = load_dataset("cub", cub)
    assert ds.classes == ["001.Black_footed_Albatross", "002.Laysan_Albatross"] and ds.splits == ["test", "train"]
    out = cli("classify", "--dataset", "cub", "--data-root", cub, "--model", "pcclip-micro", "--json").json()
    assert out["split"] == "test" and out["images"] == 4
    ranked = cli("rank", "--task", TASKS / "cub-differences.toml", "--data-root", cub, "--model", "pcclip-micro",
                 "--seeds", 2, "--pairs", 16, "--json").json()
    assert ranked["task"]["records"] == 16 and ranked["n_pairs"] == 32


@pytest.mark.parametrize("task, looked_for", [
    ("cifar100-size.toml", "cifar-100-python/train"),
    ("flowers102-colour.toml", "flowers-102/setid.mat"),
    ("awa2-attributes.toml", "Animals_with_Attributes2/classes.txt"),
    ("cub-differences.toml", "cub/captions.jsonl not found"),
])
def test_missing_dataset_names_the_files(cli, tmp_path, task, looked_for):
    r = cli("rank", "--task", TASKS / task, "--data-root", tmp_path, "--model", "pcclip-micro")
    assert r.code == 1 and len(r.error_lines()) == 1 and looked_for in r.stderr, r.stderr
    no_root = cli("rank", "--task", TASKS / task, "--model", "pcclip-micro")
    assert no_root.code == 1 and "--data-root" in no_root.stderr
