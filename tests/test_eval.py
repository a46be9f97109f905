"""`pcclip eval`: the whole suite on the shapes world in one call, reproducible, and the paper suite's checks."""

import hashlib
import json
import math

import numpy as np
import pytest

from conftest import assert_clean_error

ARGS = ("--model", "pcclip-micro", "--seeds", 2, "--pairs", 12, "--top-k", 2, "--descriptions", 3, "--keep", 1)


@pytest.fixture(scope="module")
def suite(world):
    from typer.testing import CliRunner

    from pcclip_cli.cli.main import app

    result = CliRunner().invoke(app, ["eval", "--world", str(world), *map(str, ARGS), "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_suite_has_every_evaluation(suite, world):
    assert suite["suite"] == "shapes" and suite["model"] == "pcclip-micro"
    assert [r["task"]["name"] for r in suite["rank"]] == ["shapes-size", "shapes-colour", "shapes-attributes",
                                                         "shapes-count"]
    assert all(r["n_pairs"] == 24 for r in suite["rank"])
    for name, info in suite["task_files"].items():
        assert info["sha256"] == hashlib.sha256((world / "tasks" / f"{name}.toml").read_bytes()).hexdigest()
    assert set(suite["classify"]) == {"shape", "colour", "colour_shape"}
    for name, c in suite["classify"].items():
        comp = c["comparative"]
        assert len(comp["records"]) == 2 * len(c["zero_shot"]["top_confused"])
        assert comp["before"]["accuracy"] == c["zero_shot"]["accuracy"]
        assert c["selection"]["scored_split"] == "train" and c["selection"]["evaluated_split"] == "test"
        d = suite["distance"][name]
        assert d["n"] == len(comp["records"])
        assert d["mean"]["comparison"] + d["mean"]["reverse"] == pytest.approx(2.0)
    assert [o["attribute"] for o in suite["ordering"]] == ["larger", "bigger", "smaller"]
    assert all(0.0 <= o["concordance"] <= 1.0 for o in suite["ordering"])
    assert "ordering/bigger" in suite["summary"]
    summary = suite["summary"]
    assert summary["rank/shapes-size"] == suite["rank"][0]["accuracy"]["mean"]
    assert summary["zero_shot/colour"] == suite["classify"]["colour"]["zero_shot"]["accuracy"]


NEW_METRICS = ["geometry/alignment", "geometry/uniformity_image", "geometry/uniformity_text", "clipscore",
               *(f"{kind}/{name}" for kind in ("zero_shot", "linear_probe") for name in ("shape", "colour",
                                                                                          "colour_shape")),
               *(f"zero_shot/{name}/{k}" for name in ("shape", "colour", "colour_shape") for k in ("top3", "top5"))]


def test_eval_json_has_every_embedding_metric(suite):
    summary = suite["summary"]
    missing = [k for k in NEW_METRICS if k not in summary]
    assert not missing, missing
    assert all(isinstance(summary[k], float) and math.isfinite(summary[k]) for k in NEW_METRICS)
    assert suite["settings"]["linear_probe"] is True


def test_zero_shot_topk_equals_a_direct_computation(suite, world, micro_clip):
    from pcclip_cli.clip.embeddings import embed_images
    from pcclip_cli.data.datasets.base import load_dataset

    for name in ("shape", "colour_shape"):
        ds = load_dataset(world / "classes" / f"{name}.jsonl")
        items = ds.in_split("test")
        g = embed_images(micro_clip, [it.path for it in items]).vectors.astype(np.float64)
        f = micro_clip.encode_texts([f"This is a photo of a {c}." for c in ds.classes]).astype(np.float64)
        logits = g @ f.T
        true = np.array([ds.classes.index(it.label) for it in items])
        # Rank of the true class: how many classes score strictly higher.
        above = (logits > logits[np.arange(len(true)), true][:, None]).sum(axis=1)
        zs = suite["classify"][name]["zero_shot"]
        for k in (1, 3, 5):
            assert zs["topk"][f"top{k}"] == pytest.approx(float((above < k).mean()))
        assert zs["topk"]["top1"] == zs["accuracy"] == suite["summary"][f"zero_shot/{name}"]
        assert suite["summary"][f"zero_shot/{name}/top3"] == zs["topk"]["top3"]


def test_geometry_and_clipscore_equal_a_direct_computation(suite, world, micro_clip):
    from pcclip_cli.clip.embeddings import embed_images

    rows = [json.loads(line) for line in (world / "captions.jsonl").read_text().splitlines()]
    test = [r for r in rows if r["split"] == "test"]
    g = embed_images(micro_clip, [world / r["image"] for r in test]).vectors.astype(np.float64)
    t = micro_clip.encode_texts([r["caption"] for r in test]).astype(np.float64)
    cos = [float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(g, t, strict=True)]
    geo, summary = suite["geometry"], suite["summary"]
    assert geo["split"] == "test" and geo["pairs"] == len(test)
    assert summary["clipscore"] == pytest.approx(sum(2.5 * max(c, 0.0) for c in cos) / len(cos), rel=1e-5)
    assert summary["geometry/alignment"] == pytest.approx(sum(2 - 2 * c for c in cos) / len(cos), rel=1e-5)

    def uniformity(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        terms = [math.exp(-2 * float(np.sum((x[i] - x[j]) ** 2))) for i in range(len(x)) for j in range(i + 1, len(x))]
        return math.log(sum(terms) / len(terms))

    assert summary["geometry/uniformity_image"] == pytest.approx(uniformity(g), rel=1e-4, abs=1e-6)
    assert summary["geometry/uniformity_text"] == pytest.approx(uniformity(t), rel=1e-4, abs=1e-6)


def test_linear_probe_names_its_splits(suite, world):
    from pcclip_cli.data.datasets.base import load_dataset

    for name in ("shape", "colour", "colour_shape"):
        ds = load_dataset(world / "classes" / f"{name}.jsonl")
        probe = suite["classify"][name]["linear_probe"]
        assert probe["train_split"] == "train" and probe["test_split"] == "test" and probe["seed"] == 0
        assert probe["fit_images"] + probe["val_images"] == len(ds.in_split("train"))
        assert probe["test_images"] == len(ds.in_split("test")) and probe["val_images"] > 0
        assert probe["C"] in probe["Cs"] and 0.0 <= probe["top1"] <= 1.0
        assert suite["summary"][f"linear_probe/{name}"] == probe["top1"]


def test_paper_suite_gets_topk_probe_and_clipscore_where_the_data_allows(cli, world, tmp_path):
    # A CUB-layout copy of the world's shape classes (symlinks, so the embedding cache is shared) with captions.
    rows = [json.loads(line) for line in (world / "classes" / "shape.jsonl").read_text().splitlines()]
    base = tmp_path / "data" / "CUB_200_2011"
    names = sorted({r["label"] for r in rows})
    (base / "images").mkdir(parents=True)
    (base / "classes.txt").write_text("".join(f"{i} {i:03d}.{c}\n" for i, c in enumerate(names, 1)))
    images, labels, splits = [], [], []
    for n, r in enumerate(rows, 1):
        rel = f"{names.index(r['label']) + 1:03d}.{r['label']}/{n}.png"
        (base / "images" / rel).parent.mkdir(exist_ok=True)
        (base / "images" / rel).symlink_to((world / "classes" / r["image"]).resolve())
        images.append(f"{n} {rel}\n")
        labels.append(f"{n} {names.index(r['label']) + 1}\n")
        splits.append(f"{n} {int(r['split'] == 'train')}\n")
    for fname, lines in (("images.txt", images), ("image_class_labels.txt", labels),
                         ("train_test_split.txt", splits)):
        (base / fname).write_text("".join(lines))
    (tmp_path / "data" / "cub").mkdir()
    caps = [json.loads(line) for line in (world / "captions.jsonl").read_text().splitlines()][:10]
    (tmp_path / "data" / "cub" / "captions.jsonl").write_text("".join(
        json.dumps({"id": c["id"], "image": str(world / c["image"]), "caption": c["caption"]}) + "\n" for c in caps))
    r = cli("eval", "--suite", "paper", "--data-root", tmp_path / "data", "--model", "pcclip-micro",
            "--linear-probe", "--seeds", 1, "--pairs", 4, "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert set(out["classify"]) == {"cub"} and out["settings"]["linear_probe"] is True
    assert out["classify"]["cub"]["linear_probe"]["train_split"] == "train"
    assert out["geometry"]["pairs"] == 10 and out["geometry"]["split"] is None  # CUB captions have no splits
    for key in ("zero_shot/cub/top3", "zero_shot/cub/top5", "linear_probe/cub", "clipscore", "geometry/alignment"):
        assert key in out["summary"], key


def test_probe_defaults_and_flag():
    from pcclip_cli.evaluation.suite import SuiteOptions

    assert SuiteOptions().linear_probe is True
    assert SuiteOptions(suite="paper", data_root="x").linear_probe is False
    assert SuiteOptions(linear_probe=False).linear_probe is False


def test_suite_is_reproducible_and_tables_go_to_stderr(cli, suite, world, tmp_path):
    out = tmp_path / "suite.json"
    r = cli("eval", "--world", world, *ARGS, "--out", out, "--tag", "scope=text", "--tag", "llm=template")
    assert r.code == 0 and r.stdout == ""
    assert "difference-based classification" in r.stderr and "comparison distances" in r.stderr
    assert "zero-shot top-k and linear probe" in r.stderr and "CLIPScore (w = 2.5)" in r.stderr

    again = json.loads(out.read_text())
    assert again["summary"] == suite["summary"] and again["settings"]["seed"] == 0
    assert again["tags"] == {"scope": "text", "llm": "template"}
    # The saved result is what `pcclip report` reads: tags become the arm, /se keys its error bars.
    from pcclip_cli.evaluation.report import read_result

    run = read_result(out)
    assert run.settings["scope"] == "text"
    assert run.errors["rank/shapes-size"] == suite["summary"]["rank/shapes-size/se"]
    assert "rank/shapes-size/se" not in run.metrics
    assert all(run.metrics[k] == suite["summary"][k] for k in NEW_METRICS)  # report columns for the new metrics


def test_not_a_world_is_a_clean_error(run_pcclip, tmp_path):
    assert_clean_error(run_pcclip("eval", "--world", tmp_path, "--model", "pcclip-micro"), "not a shapes world")


def test_paper_suite_without_datasets_says_what_it_looked_for(cli, tmp_path):
    r = cli("eval", "--suite", "paper", "--data-root", tmp_path, "--model", "pcclip-micro")
    assert r.code == 1 and len(r.error_lines()) == 1
    assert "cifar-100-python" in r.stderr and "none of the paper's datasets" in r.stderr
    r = cli("eval", "--suite", "paper", "--model", "pcclip-micro")
    assert r.code == 1 and "--data-root" in r.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--alpha", "2"], "--alpha"),
    (["--tag", "novalue"], "--tag"),
    (["--keep", "5", "--descriptions", "3"], "--keep"),
    (["--pairs", "0"], "--pairs"),
    (["--no-linear-probe", "--probe-val-fraction", "1"], "--probe-val-fraction"),
])
def test_bad_suite_options(cli, world, args, fragment):
    r = cli("eval", "--world", world, "--model", "pcclip-micro", *args)
    assert r.code == 1 and fragment in r.stderr


@pytest.fixture(scope="module")
def produce_world(tmp_path_factory):
    """A 130-image produce world: its own task files and five class sets (produce, colour, size, shape, pattern)."""
    from pcclip_cli.data.produce import ProduceConfig, build_world

    out = tmp_path_factory.mktemp("produce") / "p130"
    build_world(out, ProduceConfig(images=130, seed=0))
    return out


def test_world_suite_runs_the_produce_worlds_own_sets_and_tasks(cli, produce_world, micro_clip):
    from pcclip_cli.clip.embeddings import embed_images
    from pcclip_cli.data.datasets.base import load_dataset

    r = cli("eval", "--world", produce_world, *ARGS, "--json")
    assert r.code == 0, r.stderr
    result, meta = r.json(), json.loads((produce_world / "world.json").read_text())
    assert result["world"]["kind"] == "produce" and result["world"]["images"] == 130
    # The task files and class sets are the ones world.json lists, none of the shapes world's.
    assert sorted(result["task_files"]) == sorted(p.removeprefix("tasks/").removesuffix(".toml")
                                                  for p in meta["tasks"]) == ["colour", "pattern", "size"]
    assert [t["task"]["name"] for t in result["rank"]] == ["produce-colour", "produce-pattern", "produce-size"]
    for name, info in result["task_files"].items():
        assert info["sha256"] == hashlib.sha256((produce_world / "tasks" / f"{name}.toml").read_bytes()).hexdigest()
    assert list(result["classify"]) == ["produce", "colour", "size", "shape", "pattern"]
    summary = result["summary"]
    for name in result["classify"]:
        for key in (f"zero_shot/{name}", f"zero_shot/{name}/top3", f"zero_shot/{name}/top5", f"linear_probe/{name}"):
            assert 0.0 <= summary[key] <= 1.0, key
    assert summary["zero_shot/size/top3"] == 1.0  # three sizes: the true one is always among the top three
    assert all(math.isfinite(summary[k]) for k in ("geometry/alignment", "geometry/uniformity_image",
                                                   "geometry/uniformity_text"))
    assert [o["attribute"] for o in result["ordering"]] == ["larger", "bigger", "smaller"]
    # Zero-shot top-k over the 26 produce classes, computed directly.
    ds = load_dataset(produce_world / "classes" / "produce.jsonl")
    assert len(ds.classes) == 26
    items = ds.in_split("test")
    g = embed_images(micro_clip, [it.path for it in items]).vectors.astype(np.float64)
    f = micro_clip.encode_texts([f"This is a photo of a {c}." for c in ds.classes]).astype(np.float64)
    logits = g @ f.T
    true = np.array([ds.classes.index(it.label) for it in items])
    above = (logits > logits[np.arange(len(true)), true][:, None]).sum(axis=1)
    for k in (1, 3, 5):
        assert summary[f"zero_shot/produce/top{k}" if k > 1 else "zero_shot/produce"] == pytest.approx(
            float((above < k).mean()))


def test_world_missing_its_files_names_them(run_pcclip, produce_world, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(produce_world, broken)
    (broken / "classes" / "size.jsonl").unlink()
    (broken / "tasks" / "pattern.toml").unlink()
    assert_clean_error(run_pcclip("eval", "--world", broken, "--model", "pcclip-micro"),
                       "produce world", "classes/size.jsonl", "tasks/pattern.toml")
