"""`pcclip demo --world produce` end to end on a tiny produce world with a tiny base, through the real CLI."""

import json
from dataclasses import replace

import pytest

from conftest import assert_clean_error

IMAGES = 120
MINI = ["--world", "produce", "--world-images", str(IMAGES), "--pairs", "300", "--epochs", "2", "--batch-size", "32",
        "--lr", "1e-3", "--seeds", "2", "--eval-pairs", "20"]


@pytest.fixture(scope="module")
def produce_clip(tmp_path_factory):
    """A tiny `produce-clip` (pcclip-micro from random init) on the produce world the demo builds with the same
    settings, so the demo's test split is held out from it too; installed in this session's PCCLIP_HOME."""
    from pcclip_cli.data.produce import ProduceConfig, build_world
    from pcclip_cli.models import shapes_model_dir
    from pcclip_cli.training.shapes_recipe import ShapesRecipe, train_shapes_base

    world = tmp_path_factory.mktemp("produce-base") / "world"
    build_world(world, ProduceConfig(images=IMAGES, seed=0))
    recipe = replace(ShapesRecipe.for_tests(), world="produce", images=IMAGES, epochs=20)
    return train_shapes_base(shapes_model_dir("produce-clip"), recipe=recipe, world_dir=world)


@pytest.fixture(scope="module")
def demo_run(produce_clip, tmp_path_factory, module_cli):
    out = tmp_path_factory.mktemp("demo-produce") / "run"
    result = module_cli("demo", "--out", out, *MINI, "--json")
    assert result.code == 0, result.stderr
    return out, result.json()


@pytest.fixture(scope="module")
def module_cli():
    """conftest's `cli`, for the module-scoped run."""
    from typer.testing import CliRunner

    from conftest import CliResult
    from pcclip_cli.cli.main import app

    def run(*args):
        res = CliRunner().invoke(app, [str(a) for a in args])
        if res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        return CliResult(res.exit_code, res.stdout, res.stderr)

    return run


def test_produce_demo_writes_its_artifacts_and_both_models_tables(demo_run):
    out, result = demo_run
    for name in ("world/world.json", "comparatives.jsonl", "comparatives.clean.jsonl", "filter-report.json",
                 "pc-clip/pcclip.json", "eval-base.json", "eval-pc.json", "demo.json",
                 "class-texts/descriptions-template.clean.jsonl", "class-texts/classes-base-template.clean.jsonl"):
        assert (out / name).exists(), name
    assert result["world"] == "produce" and result["base"] == "produce-clip"
    assert json.loads((out / "world/world.json").read_text())["world"] == "produce"
    meta = json.loads((out / "pc-clip/pcclip.json").read_text())
    assert meta["scope"] == "text" and meta["training"]["objective"] == "pc"
    # The world's own pair rules did the filtering, and comparatives name training images only.
    assert json.loads((out / "filter-report.json").read_text())["rules_file"].endswith("filter-pairs.toml")
    rows = [json.loads(x) for x in (out / "world/captions.jsonl").read_text().splitlines()]
    test_ids = {r["id"] for r in rows if r["split"] == "test"}
    comps = [json.loads(x) for x in (out / "comparatives.jsonl").read_text().splitlines()]
    assert len(comps) == 300 and not any(c["first"] in test_ids or c["second"] in test_ids for c in comps)
    keys = {row["key"] for row in result["table"]}
    assert {"zero_shot/top1", "zero_shot/top5", "comparative/a0.9/gain", "comparative/a0.5/touched_gain",
            "distance/comparison", "descriptions/gain", "rank/produce-size", "rank/produce-pattern/sentence"} <= keys
    assert result["table"] == json.loads((out / "demo.json").read_text())["table"]


def test_produce_demo_numbers_are_consistent(demo_run):
    out, result = demo_run
    saved = json.loads((out / "demo.json").read_text())
    for name in ("base", "pc"):
        model = saved["models"][name]
        zs = model["zero_shot"]
        assert 0 <= zs["top1"] <= zs["top3"] <= zs["top5"] <= 1
        assert 1 <= len(zs["confused"]) <= 3
        comp = model["comparative"]
        touched = {c for pair in comp["pairs"] for c in pair}
        assert set(comp["touched"]) == touched
        assert set(comp["alphas"]) == {"a0.9", "a0.8", "a0.7", "a0.5"} and comp["paper_alpha"] == 0.9
        for block in comp["alphas"].values():
            assert block["before"] == pytest.approx(zs["top1"])  # before Eq. 3 is plain zero-shot
            assert block["gain"] == pytest.approx(block["after"] - block["before"])
            assert block["touched_gain"] == pytest.approx(block["touched_after"] - block["touched_before"])
            paired = block["paired"]
            assert paired["all"]["images"] == zs["images"] and paired["touched"]["images"] == comp["touched_images"]
            # The gain is what was fixed minus what was broken, over the images.
            assert block["gain"] == pytest.approx((paired["all"]["fixed"] - paired["all"]["broken"]) / zs["images"])
        # Both ways round for each confused pair, as many records as the distance measured.
        assert len(comp["texts"]) == 2 * len(comp["pairs"]) == model["distance"]["n"]
        desc = model["descriptions"]
        assert desc["template"] == pytest.approx(zs["top1"]) and desc["gain"] == pytest.approx(desc["accuracy"] - desc["template"])
        assert desc["records"] == 4 * desc["classes"]
        assert set(model["tasks"]) == {"produce-size", "produce-colour", "produce-pattern"}
        for task in model["tasks"].values():
            assert task["pairs"] == 2 * 20 and len(task["per_paraphrase"]) == 5
    # The table is the two evaluations side by side.
    evals = {n: json.loads((out / f"eval-{n}.json").read_text())["summary"] for n in ("base", "pc")}
    for row in result["table"]:
        assert row["base"] == evals["base"][row["key"]] and row["pc"] == evals["pc"][row["key"]]
    # PC-CLIP shares the base image tower, but its text tower changed: some number moved.
    assert any(abs(row["base"] - row["pc"]) > 1e-9 for row in result["table"])


def test_produce_demo_rerun_reuses_every_step(demo_run, cli):
    out, first = demo_run
    again = cli("demo", "--out", out, *MINI, "--json")
    assert again.code == 0, again.stderr
    steps = {s["step"]: s for s in again.json()["steps"]}
    assert steps["building the produce world"]["reused"] is True
    assert steps["generating comparatives (template)"]["llm_calls"] == 0
    assert steps["filtering"]["reused"] is True
    assert steps["training PC-CLIP (text scope)"]["reused"] is True
    assert steps["evaluating the base model"]["reused"] and steps["evaluating PC-CLIP"]["reused"]
    assert again.json()["table"] == first["table"]
    people = cli("demo", "--out", out, *MINI)
    assert people.code == 0 and people.stdout == ""
    assert "produce world" in people.stderr and "zero-shot top-1" in people.stderr
    assert "most confused (PC-CLIP" in people.stderr


def test_a_killed_evaluation_is_redone_and_the_rest_reused(demo_run, cli):
    out, first = demo_run
    (out / "eval-pc.json").unlink()  # as if the run had been killed while evaluating PC-CLIP
    again = cli("demo", "--out", out, *MINI, "--json")
    assert again.code == 0, again.stderr
    steps = {s["step"]: s for s in again.json()["steps"]}
    assert steps["evaluating the base model"]["reused"] is True and steps["evaluating PC-CLIP"]["reused"] is False
    assert steps["training PC-CLIP (text scope)"]["reused"] is True
    assert again.json()["table"] == first["table"]


def test_another_worlds_demo_directory_is_one_clean_error(demo_run, run_pcclip):
    out, _ = demo_run
    result = run_pcclip("demo", "--out", out, "--world-images", str(IMAGES))
    assert_clean_error(result, "produce demo", "--out")


def test_an_unknown_world_is_a_usage_error(run_pcclip, tmp_path):
    result = run_pcclip("demo", "--out", tmp_path / "d", "--world", "fruit")
    assert result.code == 2 and "fruit" in result.stderr and not (tmp_path / "d").exists()


def test_report_reads_the_produce_demo(demo_run, cli, tmp_path):
    """Each evaluation carries a flat `summary` (errors as `/se`), so `pcclip report` compares the two arms."""
    out, result = demo_run
    res = cli("report", out, "--out", tmp_path / "table.md", "--json")
    assert res.code == 0, res.stderr
    by_arm = {a["settings"]["arm"]: a["metrics"] for a in res.json()["arms"]}
    top1 = next(r for r in result["table"] if r["key"] == "zero_shot/top1")
    assert set(by_arm) == {"base", "pc"}
    assert by_arm["base"]["zero_shot/top1"] == pytest.approx(top1["base"])
    assert by_arm["pc"]["zero_shot/top1"] == pytest.approx(top1["pc"])
