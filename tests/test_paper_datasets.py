"""The six evaluation datasets in their released on-disk formats, read end to end through the real CLI:
`rank --task`, `classify --dataset NAME` and `eval --suite paper` on each (fixtures from fixtures_datasets)."""

import pickletools

import fixtures_datasets as fx
import pytest

from conftest import REPO, assert_clean_error
from pcclip_cli.data.datasets.base import load_dataset

TASKS = REPO / "examples" / "tasks"
MODEL = ("--model", "pcclip-micro")


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """One data root per dataset, so each eval sees exactly one dataset present."""
    out = {}
    for name, build in (("cifar100", fx.cifar100), ("flowers102", fx.flowers102), ("eurosat", fx.eurosat),
                        ("sun397", fx.sun397), ("awa2", fx.awa2), ("cub", fx.cub)):
        out[name] = build(tmp_path_factory.mktemp(name))
    return out


def _groups_task(path, dataset: str, first: list[str], second: list[str]) -> None:
    """A task file on a named dataset that has no paper task (EuroSAT, SUN397)."""
    q = lambda xs: ", ".join(f'"{x}"' for x in xs)  # noqa: E731
    path.write_text(f'name = "{dataset}-groups"\nkind = "groups"\ndataset = "{dataset}"\n'
                    f"[groups.a]\nlabel = [{q(first)}]\n[groups.b]\nlabel = [{q(second)}]\n"
                    '[[pairs]]\nfirst = "a"\nsecond = "b"\ntext = "The first image is greener than the second."\n')


def _eval(cli, root, extra=()):
    r = cli("eval", "--suite", "paper", "--data-root", root, *MODEL, "--seeds", "1", "--pairs", "6", *extra, "--json")
    assert r.code == 0, r.stderr
    return r.json()


def _classify(cli, name, root, n_images: int, n_classes: int):
    r = cli("classify", "--dataset", name, "--data-root", root, *MODEL, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["images"] == n_images and len(doc["classes"]) == n_classes, doc
    return doc


def _rank(cli, task, root, pairs: int = 8) -> dict:
    r = cli("rank", "--task", task, "--data-root", root, *MODEL, "--seeds", "2", "--pairs", pairs, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["n_pairs"] == 2 * pairs and 0.0 <= doc["accuracy"]["mean"] <= 1.0
    return doc


def test_cifar100_python_pickles(cli, roots):
    root = roots["cifar100"]
    # Written as the release was (Python 2, protocol 2): byte strings only, no unicode opcodes.
    ops = {op.name for op, _, _ in pickletools.genops((root / "cifar-100-python" / "train").read_bytes())}
    assert "SHORT_BINSTRING" in ops and not ops & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES"}
    ds = load_dataset("cifar100", root)
    assert len(ds.classes) == 100 and ds.splits == ["test", "train"]
    for it in ds.items[:20]:
        assert it.attributes["coarse_label"] == fx.CIFAR100_USED[it.label]
    ds.ensure_files(ds.in_split("test")[:3])  # the PNG written from the array holds the original pixels
    import numpy as np
    from PIL import Image

    first = ds.in_split("test")[0]
    assert np.array_equal(np.asarray(Image.open(first.path)), np.asarray(fx.picture(10000)))
    task = _rank(cli, TASKS / "cifar100-size.toml", root)
    assert task["task"]["groups"] == {"large": 24, "small": 12}  # the coarse labels' members among 45 test images
    _classify(cli, "cifar100", root, 45, 100)
    out = _eval(cli, root)
    assert set(out["classify"]) == {"cifar100"} and [r["task"]["name"] for r in out["rank"]] == ["cifar100-size"]


def test_cifar10_batches(cli, tmp_path):
    import numpy as np
    from PIL import Image

    root = fx.cifar10(tmp_path)
    ds = load_dataset("cifar10", root)
    assert ds.classes == fx.CIFAR10_NAMES and {s: len(ds.in_split(s)) for s in ds.splits} == {"test": 4, "train": 20}
    train = ds.in_split("train")
    assert [it.label for it in train[4:6]] == ["automobile", "bird"]  # data_batch_2's labels start at 1
    ds.ensure_files(train[5:6])
    assert np.array_equal(np.asarray(Image.open(train[5].path)), np.asarray(fx.picture(20101)))
    _classify(cli, "cifar10", root, 4, 10)


def test_flowers102_mat_files(cli, roots):
    root = roots["flowers102"]
    ds = load_dataset("flowers102", root)
    assert {s: len(ds.in_split(s)) for s in ds.splits} == {"train": 8, "val": 8, "test": 32}
    assert ds.in_split("train")[0].path.name == "image_00001.jpg" and ds.in_split("train")[0].label == "yellow iris"
    task = _rank(cli, TASKS / "flowers102-colour.toml", root)
    assert task["task"]["groups"] == {"yellow": 16, "blue": 8}
    _classify(cli, "flowers102", root, 32, 102)
    out = _eval(cli, root)
    assert set(out["classify"]) == {"flowers102"} and [r["task"]["name"] for r in out["rank"]] == ["flowers102-colour"]


def test_eurosat_class_folders(cli, roots, tmp_path):
    root = roots["eurosat"]
    _groups_task(tmp_path / "t.toml", "eurosat", ["Forest", "Pasture"], ["Highway", "Industrial"])
    _rank(cli, tmp_path / "t.toml", root)
    doc = _classify(cli, "eurosat", root, 30, 10)
    assert doc["split"] is None  # EuroSAT ships no split: every image is evaluated
    out = _eval(cli, root)
    assert set(out["classify"]) == {"eurosat"} and out["rank"] == []


def test_sun397_class_paths(cli, roots, tmp_path):
    root = roots["sun397"]
    ds = load_dataset("sun397", root)
    assert ds.classes == ["abbey", "apartment_building/outdoor", "bakery/shop", "kitchen", "kitchenette"]
    _groups_task(tmp_path / "t.toml", "sun397", ["kitchen"], ["kitchenette"])
    _rank(cli, tmp_path / "t.toml", root)
    _classify(cli, "sun397", root, 20, 5)
    out = _eval(cli, root)
    assert set(out["classify"]) == {"sun397"}


def test_awa2_predicate_matrix(cli, roots):
    root = roots["awa2"]
    task = _rank(cli, TASKS / "awa2-attributes.toml", root)
    for ex in task["examples"]:
        assert "smelly" not in ex["text"] and "longleg" not in ex["text"]  # excluded and renamed predicates
    _classify(cli, "awa2", root, 20, 5)
    out = _eval(cli, root)
    assert out["classify"] == {} and [r["task"]["name"] for r in out["rank"]] == ["awa2-attributes"]


def test_cub_index_files_and_captions(cli, roots):
    root = roots["cub"]
    caps = root / "cub" / "captions.jsonl"
    assert cli("data", "cub", root, root, caps, "--split", "test", "--json").code == 0
    gen = cli("generate", "--llm", "template", "--captions", caps, "--prompt", "cub", "--pairs", "20",
              "--out", root / "cub" / "comparatives.jsonl", "--json")
    assert gen.code == 0, gen.stderr
    _rank(cli, TASKS / "cub-differences.toml", root)
    _classify(cli, "cub", root, 8, 4)
    out = _eval(cli, root)
    assert set(out["classify"]) == {"cub"} and [r["task"]["name"] for r in out["rank"]] == ["cub-differences"]
    assert out["geometry"]["pairs"] == 8 and out["geometry"]["split"] == "test"


@pytest.mark.parametrize("name, index_file", [
    ("cifar100", "cifar-100-python/meta"), ("cifar100", "cifar-100-python/test"),
    ("flowers102", "flowers-102/imagelabels.mat"), ("flowers102", "flowers-102/setid.mat"),
    ("sun397", "SUN397/ClassName.txt"),
    ("awa2", "Animals_with_Attributes2/predicates.txt"),
    ("awa2", "Animals_with_Attributes2/predicate-matrix-binary.txt"),
    ("cub", "CUB_200_2011/image_class_labels.txt"), ("cub", "CUB_200_2011/train_test_split.txt"),
])
def test_one_index_file_missing_is_one_error_naming_it(cli, roots, tmp_path, name, index_file):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(roots[name], root)
    (root / index_file).unlink()
    r = cli("classify", "--dataset", name, "--data-root", root, *MODEL)
    assert_clean_error(r, str(root / index_file), "never downloads")


def test_corrupt_release_files_are_one_error(cli, roots, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(roots["flowers102"], root)
    (root / "flowers-102" / "setid.mat").write_bytes(b"not a mat file")
    assert_clean_error(cli("classify", "--dataset", "flowers102", "--data-root", root, *MODEL),
                       str(root / "flowers-102" / "setid.mat"), "not a readable MATLAB file")
    shutil.copytree(roots["cifar100"], tmp_path / "c")
    fx.py2_pickle({"fine_labels": [1], "data": b"x"}, tmp_path / "c" / "cifar-100-python" / "test")
    assert_clean_error(cli("classify", "--dataset", "cifar100", "--data-root", tmp_path / "c", *MODEL),
                       "cifar-100-python/test", "3072")


def test_eval_sets_the_papers_figures_beside_its_own(cli, roots, tmp_path):
    """Tables 1, 2, 3 and 6 of the paper in the JSON and on stderr, beside this run's numbers in the same units."""
    import shutil

    from pcclip_cli.evaluation.paper_figures import paper_figures

    root = tmp_path / "data"
    for name in ("cifar100", "flowers102"):
        shutil.copytree(roots[name], root, dirs_exist_ok=True)
    out = _eval(cli, root, ("--llm", "template"))
    paper, fig = out["paper"], paper_figures()
    assert set(paper["table1"]) == {"awa2-attributes", "cifar100-size", "cub-differences", "flowers102-colour"}
    assert set(paper["table2"]) == set(paper["table3"]) == set(paper["table6"]) == {
        "cifar100", "cub", "eurosat", "flowers102", "sun397"}
    rank = {r["task"]["name"]: r["accuracy"] for r in out["rank"]}
    row = paper["table1"]["cifar100-size"]
    assert [row["paper_clip"]["mean"], row["paper_clip"]["se"]] == fig["table1"]["clip"]["cifar100-size"]
    assert row["this_run"]["mean"] == round(100 * rank["cifar100-size"]["mean"], 2)
    assert paper["table1"]["awa2-attributes"]["this_run"] is None  # not in this data root
    for name in ("cifar100", "flowers102"):
        c = out["classify"][name]
        assert paper["table2"][name]["this_run"] == round(100 * c["zero_shot"]["accuracy"], 2)
        assert paper["table2"][name]["this_run_comp"] == round(100 * c["comparative"]["after"]["accuracy"], 2)
        assert paper["table2"][name]["paper_pc_clip_comp"] == fig["table2"]["pc_clip_comp"][name]
        t3 = paper["table3"][name]["this_run"]
        assert t3["before"] == round(100 * c["comparative"]["before"]["touched_accuracy"], 2)
        assert t3["gain"] == round(t3["after"] - t3["before"], 2)
        assert paper["table6"][name]["this_run"]["comparison"] == round(out["distance"][name]["mean"]["comparison"], 4)
    assert paper["table2"]["sun397"]["this_run"] is None and paper["table6"]["eurosat"]["this_run"] is None
    shown = cli("eval", "--suite", "paper", "--data-root", root, *MODEL, "--seeds", "1", "--pairs", "6")
    assert shown.code == 0 and shown.stdout == ""
    text = " ".join(shown.stderr.split())
    for fragment in ("Table 1", "Table 2", "Table 3", "Table 6", "54.92 ± 1.11", "86.12", "+9.38", "0.73"):
        assert fragment in text, fragment


def test_a_crafted_cifar_pickle_is_refused_without_running(cli, roots, tmp_path):
    import shutil

    root = tmp_path / "c"
    shutil.copytree(roots["cifar100"], root)
    marker = tmp_path / "ran"
    # GLOBAL os.system, called with a shell command: what a malicious "meta" file would do if unpickled freely.
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    (root / "cifar-100-python" / "meta").write_bytes(payload)
    r = cli("classify", "--dataset", "cifar100", "--data-root", root, *MODEL)
    assert_clean_error(r, "cifar-100-python/meta", "not a plain-data pickle")
    assert not marker.exists()
