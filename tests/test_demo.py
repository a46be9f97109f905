"""A miniature `pcclip demo` end to end (tiny sizes), so CI guards the integration of every command."""

import json

import pytest

from conftest import assert_clean_error

MINI = ["--world-images", "60", "--pairs", "400", "--epochs", "2", "--batch-size", "32", "--lr", "1e-3",
        "--seeds", "2", "--eval-pairs", "20"]


@pytest.fixture(scope="module")
def demo_run(shapes_clip, tmp_path_factory):
    from pcclip_cli.demo import DemoConfig, run_demo

    out = tmp_path_factory.mktemp("demo") / "run"
    cfg = DemoConfig(out=str(out), world_images=60, pairs=400, epochs=2, batch_size=32, lr=1e-3, seeds=2,
                     eval_pairs=20)
    return out, run_demo(cfg)


def test_demo_writes_every_artifact_and_compares_base_with_pc_clip(demo_run):
    out, result = demo_run
    for name in ("world/captions.jsonl", "comparatives.jsonl", "comparatives.clean.jsonl", "filter-report.json",
                 "pc-clip/pcclip.json", "eval-base.json", "eval-pc.json", "index/manifest.json", "demo.json"):
        assert (out / name).exists(), name
    meta = json.loads((out / "pc-clip/pcclip.json").read_text())
    assert meta["scope"] == "text" and meta["training"]["objective"] == "pc"
    keys = {row["key"] for row in result["table"]}
    assert {"rank/shapes-size", "zero_shot/shape", "distance/shape/comparison"} <= keys
    for row in result["table"]:
        assert row["base"] is not None and row["pc"] is not None
    # The finetune really changed the text tower: the two evaluations differ somewhere.
    assert any(abs(row["base"] - row["pc"]) > 1e-9 for row in result["table"] if not row["key"].startswith("ret"))
    assert result["retrieval"]["shared_image_tower"] is True
    # Comparatives only ever name training images.
    world_rows = [json.loads(x) for x in (out / "world/captions.jsonl").read_text().splitlines()]
    test_ids = {r["id"] for r in world_rows if r["split"] == "test"}
    comps = [json.loads(x) for x in (out / "comparatives.jsonl").read_text().splitlines()]
    assert len(comps) == 400 and not any(c["first"] in test_ids or c["second"] in test_ids for c in comps)


def test_demo_json_carries_the_generation_counts(demo_run):
    out, result = demo_run
    saved = json.loads((out / "demo.json").read_text())
    comp = saved["comparatives"]
    assert comp["total"] == 400 and comp["generated"] == 400 and comp["skipped"] == 0
    step = next(s for s in saved["steps"] if s["step"].startswith("generating comparatives"))
    assert step["generated"] == 400 and step["skipped"] == 0 and step["llm_calls"] == 400
    assert saved["comparatives"] == result["comparatives"]


def test_demo_rerun_reuses_everything_through_the_cli(demo_run, cli):
    out, first = demo_run
    result = cli("demo", "--out", out, *MINI, "--json")
    assert result.code == 0, result.stderr
    again = result.json()
    steps = {s["step"]: s for s in again["steps"]}
    assert steps["generating comparatives (template)"]["llm_calls"] == 0
    assert steps["generating comparatives (template)"]["skipped"] == 400
    assert again["comparatives"]["generated"] == 0 and again["comparatives"]["skipped"] == 400
    assert steps["training PC-CLIP (text scope)"]["reused"] is True
    assert steps["evaluating PC-CLIP"]["reused"] is True and steps["evaluating the base model"]["reused"] is True
    assert again["table"] == first["table"]
    people = cli("demo", "--out", out, *MINI)
    assert people.code == 0 and people.stdout == ""
    assert "PC-CLIP" in people.stderr and "difference: size" in people.stderr


def test_demo_bad_option_is_one_clean_error(run_pcclip, tmp_path):
    assert_clean_error(run_pcclip("demo", "--out", tmp_path / "d", "--world-images", "5"), "--world-images")
    assert not (tmp_path / "d").exists()


def test_report_reads_what_the_demo_writes(demo_run, cli, tmp_path):
    """`pcclip report runs/demo`: the demo's two evaluations become two arms, base and PC-CLIP."""
    out, result = demo_run
    table, plot = tmp_path / "table.md", tmp_path / "plot.png"
    res = cli("report", out, "--out", table, "--plot", plot, "--json")
    assert res.code == 0, res.stderr
    report = res.json()
    assert report["runs"] == 2 and len(report["arms"]) == 2
    labels = table.read_text()
    assert f"{out.name}/base" in labels and f"{out.name}/pc" in labels
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_arm = {a["settings"]["arm"]: a["metrics"] for a in report["arms"]}
    size = next(r for r in result["table"] if r["key"] == "rank/shapes-size")
    scale = 100 if size["base"] > 1 else 1  # the demo's table may show percentages
    assert abs(by_arm["base"]["rank/shapes-size"] * scale - size["base"]) < 1e-6
    assert abs(by_arm["pc"]["rank/shapes-size"] * scale - size["pc"]) < 1e-6
