"""`pcclip distance`: comparison and reverse distances per class pair and on average."""

import json

import numpy as np
import pytest

from conftest import assert_clean_error

RECS = [
    {"kind": "classes", "first": "red", "second": "blue", "text": "The first object is red, the second blue."},
    {"kind": "classes", "first": "blue", "second": "red", "text": "The first object is blue, the second red."},
    {"kind": "classes", "first": "green", "second": "yellow", "text": "Green where the other is yellow."},
]


@pytest.fixture
def comp(tmp_path):
    path = tmp_path / "comp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECS))
    return path


def test_distances_match_direct_cosines(cli, micro_clip, comp):
    out = cli("distance", "--comparatives", comp, "--model", "pcclip-micro", "--json").json()
    assert out["template"] == "This is a photo of a {}." and out["n"] == 3
    for rec, row in zip(RECS, out["pairs"], strict=True):
        f_a, f_b = micro_clip.encode_texts([f"This is a photo of a {rec['first']}.",
                                            f"This is a photo of a {rec['second']}."])
        t = micro_clip.encode_texts([rec["text"]])[0]
        d = f_a - f_b
        cos = float(d @ t / (np.linalg.norm(d) * np.linalg.norm(t)))
        assert row["comparison"] == pytest.approx(1 - cos, abs=1e-5)
        assert row["reverse"] == pytest.approx(1 + cos, abs=1e-5)
    assert out["mean"]["comparison"] == pytest.approx(np.mean([p["comparison"] for p in out["pairs"]]))
    assert out["mean"]["reverse"] == pytest.approx(2 - out["mean"]["comparison"])


def test_template_option_and_table(cli, comp):
    a = cli("distance", "--comparatives", comp, "--model", "pcclip-micro", "--json").json()
    b = cli("distance", "--comparatives", comp, "--model", "pcclip-micro", "--template", "a {} shape", "--json").json()
    assert b["template"] == "a {} shape" and b["pairs"][0]["comparison"] != a["pairs"][0]["comparison"]
    plain = cli("distance", "--comparatives", comp, "--model", "pcclip-micro")
    assert plain.code == 0 and plain.stdout == "" and "mean" in plain.stderr and "3 pairs" in plain.stderr


def test_unknown_class_for_the_dataset_is_a_clean_error(run_pcclip, world, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"kind": "classes", "first": "red", "second": "teal", "text": "x"}) + "\n")
    result = run_pcclip("distance", "--comparatives", path, "--dataset", world / "classes" / "colour.jsonl",
                        "--model", "pcclip-micro")
    assert_clean_error(result, "'teal' is not in the dataset")


def test_bad_comparative_records(cli, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"kind": "pairs", "first": "a", "second": "b", "text": "x"}) + "\n")
    r = cli("distance", "--comparatives", path, "--model", "pcclip-micro")
    assert r.code == 1 and "expected kind 'classes'" in r.stderr
    path.write_text(json.dumps({"kind": "classes", "first": "a", "second": "a", "text": "x"}) + "\n")
    r = cli("distance", "--comparatives", path, "--model", "pcclip-micro")
    assert r.code == 1 and "with itself" in r.stderr
    r = cli("distance", "--comparatives", tmp_path / "none.jsonl", "--model", "pcclip-micro")
    assert r.code == 1 and "not found" in r.stderr
