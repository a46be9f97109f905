"""`pcclip report`: arms from settings, seeds merged with standard errors, markdown and PNG written."""

import json
import math

from PIL import Image

from conftest import assert_clean_error
from pcclip_cli.evaluation.report import build_report


def _result(dirpath, tags, summary):
    dirpath.mkdir(parents=True)
    (dirpath / "result.json").write_text(json.dumps({"model": "x", "tags": tags, "summary": summary}))


def test_seeds_merge_into_arms_with_standard_error(tmp_path):
    _result(tmp_path / "runs/text-s0", {"scope": "text", "seed": 0}, {"rank.size": 0.8, "zero_shot": 0.5})
    _result(tmp_path / "runs/text-s1", {"scope": "text", "seed": 1}, {"rank.size": 0.6, "zero_shot": 0.7})
    _result(tmp_path / "runs/image-s0", {"scope": "image", "seed": 0},
            {"rank.size": 0.55, "rank.size_se": 0.02, "zero_shot": 0.4})
    rep = build_report([tmp_path / "runs"])
    assert rep["runs"] == 3 and rep["varied"] == ["scope"]
    arms = {a["settings"]["scope"]: a for a in rep["arms"]}
    text = arms["text"]
    assert text["seeds"] == 2
    assert math.isclose(text["metrics"]["rank.size"], 0.7)
    # Standard error over two seeds: std (ddof=1) / sqrt(n) = 0.1414 / 1.414 = 0.1
    assert math.isclose(text["errors"]["rank.size"], 0.1, rel_tol=1e-9)
    assert math.isclose(arms["image"]["errors"]["rank.size"], 0.02)
    assert "0.700 ± 0.100" in rep["markdown"]


def test_cli_writes_markdown_and_png(cli, tmp_path):
    _result(tmp_path / "r/a", {"loss": "contrastive"}, {"acc": 0.9, "dist": 0.5})
    _result(tmp_path / "r/b", {"loss": "mse"}, {"acc": 0.7, "dist": 0.6})
    result = cli("report", tmp_path / "r", "--out", tmp_path / "report.md", "--plot", tmp_path / "report.png",
                 "--json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["metrics"] == ["acc", "dist"] and len(doc["arms"]) == 2
    md = (tmp_path / "report.md").read_text()
    assert md.splitlines()[0].startswith("| run | loss | seeds | acc | dist |")
    assert "| mse | 1 | 0.700 | 0.600 |" in md
    img = Image.open(tmp_path / "report.png")
    assert img.size[0] > 300 and img.size[1] > 200


def test_bad_inputs(run_pcclip, tmp_path):
    assert_clean_error(run_pcclip("report", tmp_path / "nothing"), "not found")
    (tmp_path / "empty").mkdir()
    assert_clean_error(run_pcclip("report", tmp_path / "empty"), "no result*.json")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/result.json").write_text("{oops")
    assert_clean_error(run_pcclip("report", tmp_path / "bad", "--out", tmp_path / "o.md"), "not valid JSON")
    assert not (tmp_path / "o.md").exists()


def test_runs_that_differ_only_in_a_seed_tag_are_one_arm_named_without_the_seed(tmp_path):
    """The LLM ablation tags each run `train_seed=N` in directories ARM-sN: seeds merge, the arm keeps ARM."""
    for seed, acc in ((0, 0.5), (1, 0.7), (2, 0.6)):
        _result(tmp_path / f"runs/llm-gemma-filtered-pairs-s{seed}", {"llm": "gemma", "filtered": "filtered",
                "train_seed": seed}, {"acc": acc})
    _result(tmp_path / "runs/llm-gemma-unfiltered-s0", {"llm": "gemma", "filtered": "unfiltered", "train_seed": 0},
            {"acc": 0.4})
    rep = build_report([tmp_path / "runs"])
    assert rep["varied"] == ["filtered"]
    arms = {a["settings"]["filtered"]: a for a in rep["arms"]}
    assert arms["filtered"]["seeds"] == 3 and math.isclose(arms["filtered"]["metrics"]["acc"], 0.6)
    rows = {line.split(" | ")[0].lstrip("| ") for line in rep["markdown"].splitlines()[2:]}
    assert rows == {"llm-gemma-filtered-pairs", "llm-gemma-unfiltered-s0"}


def test_each_paraphrase_is_a_metric_averaged_over_training_seeds(tmp_path):
    def rank(first: float, second: float) -> list:
        paraphrases = [{"text": "a", "accuracy": {"mean": first, "se": 0.01}},
                       {"text": "b", "accuracy": {"mean": second, "se": 0.02}}]
        return [{"task": {"name": "shapes-size"}, "paraphrases": paraphrases}]

    for seed, (first, second) in enumerate([(0.9, 0.1), (0.7, 0.3)]):
        d = tmp_path / f"runs/arm-s{seed}"
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps({"model": "x", "tags": {"arm": "a", "train_seed": seed},
                                                   "summary": {"rank/shapes-size": 0.5}, "rank": rank(first, second)}))
    rep = build_report([tmp_path / "runs"], metrics=["rank/shapes-size/paraphrase-2"])
    arm = rep["arms"][0]
    assert arm["seeds"] == 2
    assert math.isclose(arm["metrics"]["rank/shapes-size/paraphrase-1"], 0.8)
    assert math.isclose(arm["metrics"]["rank/shapes-size/paraphrase-2"], 0.2)
    assert math.isclose(arm["errors"]["rank/shapes-size/paraphrase-2"], 0.1, rel_tol=1e-9)
    assert "0.200 ± 0.100" in rep["markdown"] and "paraphrase-1" not in rep["markdown"]
