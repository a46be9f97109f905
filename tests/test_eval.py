"""`pcclip eval`: the whole suite on the shapes world in one call, reproducible, and the paper suite's checks."""

import hashlib

import pytest

from conftest import assert_clean_error

ARGS = ("--model", "pcclip-micro", "--seeds", 2, "--pairs", 12, "--top-k", 2, "--descriptions", 3, "--keep", 1)


@pytest.fixture(scope="module")
def suite(world):
    from typer.testing import CliRunner

    from pcclip_cli.cli.main import app

    result = CliRunner().invoke(app, ["eval", "--world", str(world), *map(str, ARGS), "--json"])
    assert result.exit_code == 0, result.stderr
    import json

    return json.loads(result.stdout)


def test_suite_has_every_evaluation(suite, world):
    assert suite["suite"] == "shapes" and suite["model"] == "pcclip-micro"
    assert [r["task"]["name"] for r in suite["rank"]] == ["shapes-size", "shapes-colour", "shapes-attributes"]
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


def test_suite_is_reproducible_and_tables_go_to_stderr(cli, suite, world, tmp_path):
    out = tmp_path / "suite.json"
    r = cli("eval", "--world", world, *ARGS, "--out", out, "--tag", "scope=text", "--tag", "llm=template")
    assert r.code == 0 and r.stdout == ""
    assert "difference-based classification" in r.stderr and "comparison distances" in r.stderr
    import json

    again = json.loads(out.read_text())
    assert again["summary"] == suite["summary"] and again["settings"]["seed"] == 0
    assert again["tags"] == {"scope": "text", "llm": "template"}
    # The saved result is what `pcclip report` reads: tags become the arm, /se keys its error bars.
    from pcclip_cli.reporting import read_result

    run = read_result(out)
    assert run.settings["scope"] == "text"
    assert run.errors["rank/shapes-size"] == suite["summary"]["rank/shapes-size/se"]
    assert "rank/shapes-size/se" not in run.metrics


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
])
def test_bad_suite_options(cli, world, args, fragment):
    r = cli("eval", "--world", world, "--model", "pcclip-micro", *args)
    assert r.code == 1 and fragment in r.stderr
