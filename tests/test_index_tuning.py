"""Indexes tuned to a recall target: the tuning loop on clustered data, the manifest, `auto`, and the bounds."""

import json

import numpy as np
import pytest

from pcclip_cli.core.errors import PcclipError
from pcclip_cli.retrieval import (
    MANIFEST_FILE,
    IndexType,
    build_index,
    index_params,
    make_faiss_index,
    retrieve,
)
from pcclip_cli.retrieval.query import Query
from pcclip_cli.retrieval.tuning import tune_index


def mixture(n, dim, centres, spread, seed):
    """Unit vectors from a Gaussian mixture: N(0, I) centres, each point a centre plus N(0, spread^2 I) noise."""
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(1234).standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at(index, data, queries, k):
    _, ids = index.search(queries, k)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :k]
    return np.mean([len(set(a) & set(e)) / k for a, e in zip(ids.tolist(), exact.tolist(), strict=True)])


@pytest.fixture(scope="module")
def clustered():
    return mixture(20_000, 32, centres=64, spread=1.0, seed=0)


@pytest.mark.parametrize("target", [0.9, 0.98])
def test_ivf_is_tuned_to_the_smallest_nprobe_reaching_the_target(clustered, target):
    import faiss

    params = index_params(IndexType.ivf, len(clustered))
    index, _ = make_faiss_index(IndexType.ivf, 32, params, clustered)
    t = tune_index(index, "ivf", clustered, target_recall=target, queries=500)
    assert t.param == "nprobe" and t.met and t.warning is None
    assert faiss.extract_index_ivf(index).nprobe == t.value  # the index is left at the chosen setting
    assert t.recall >= target
    # Every smaller setting tried fell short, and the largest of them is within the bisection's last step.
    below = [tr.value for tr in t.trials if tr.value < t.value]
    assert all(tr.recall < target for tr in t.trials if tr.value < t.value)
    assert t.value == 1 or t.value - max(below) <= max(1, t.value // 16)
    # On fresh queries from the same mixture (not in the index) the recall holds, within sampling error.
    fresh = mixture(300, 32, centres=64, spread=1.0, seed=99)
    assert recall_at(index, clustered, fresh, 10) >= target - 0.03
    assert 0 < t.p50_ms <= t.p95_ms


def test_hnsw_ef_search_is_tuned(clustered):
    data = clustered[:5000]
    params = index_params(IndexType.hnsw, len(data))
    index, _ = make_faiss_index(IndexType.hnsw, 32, params, data)
    t = tune_index(index, "hnsw", data, target_recall=0.97, queries=300)
    assert t.param == "ef_search" and index.hnsw.efSearch == t.value and t.recall >= 0.97
    assert all(tr.recall < 0.97 for tr in t.trials if tr.value < t.value)


def test_a_latency_bound_no_setting_meets_keeps_the_fastest_and_says_so(clustered):
    params = index_params(IndexType.ivf, len(clustered))
    index, _ = make_faiss_index(IndexType.ivf, 32, params, clustered)
    t = tune_index(index, "ivf", clustered, target_recall=0.95, max_latency_ms=1e-6, queries=200)
    assert not t.met and "no setting meets" in t.warning and "recall" in t.warning
    assert t.value == min(tr.value for tr in t.trials)  # none is within the bound: the fastest is kept
    assert all(tr.p50_ms is not None for tr in t.trials)


def test_unreachable_recall_keeps_the_most_the_index_gives_and_warns(monkeypatch):
    from pcclip_cli.retrieval import tuning

    # Random directions (no clusters) and a ceiling of efSearch 16: recall 0.999 is out of reach.
    monkeypatch.setattr(tuning, "HNSW_EF_MAX", 16)
    data = mixture(4000, 32, centres=4000, spread=1.0, seed=3)
    index, _ = make_faiss_index(IndexType.hnsw, 32, {"m": 4, "ef_construction": 16, "ef_search": 16}, data)
    t = tune_index(index, "hnsw", data, target_recall=0.999, queries=200)
    assert not t.met and t.value == 16 and t.recall < 0.999
    assert "out of reach" in t.warning and f"{t.recall:.3f}" in t.warning


def test_target_outside_the_unit_interval_is_refused(clustered):
    index, _ = make_faiss_index(IndexType.flat, 32, {}, clustered[:100])
    for bad in (0, -0.5, 1.01):
        with pytest.raises(PcclipError, match=r"--target-recall must be in \(0, 1\]"):
            tune_index(index, "flat", clustered[:100], target_recall=bad)


def test_manifest_records_recall_and_latency_and_retrieve_reports_them(world, tmp_path, cli):
    out = tmp_path / "idx"
    summary = build_index([world / "captions.jsonl"], out, model="pcclip-micro", index_type="hnsw",
                          target_recall=0.9)
    tuning = json.loads((out / MANIFEST_FILE).read_text())["index"]["tuning"]
    assert tuning["target_recall"] == 0.9 and tuning["measured_recall"] >= 0.9 and tuning["met"]
    assert tuning["param"] == "ef_search" and tuning["k"] == 10 and tuning["sample_queries"] == 60
    assert tuning["latency_ms_p50"] > 0 and tuning["trials"] and "leave-one-out" in tuning["method"]
    assert summary.recall == tuning["measured_recall"] and summary.params["ef_search"] == tuning["value"]
    doc = cli("retrieve", "--index", out, "--text", "a red circle", "--json").json()
    assert doc["recall"]["measured_recall"] == tuning["measured_recall"]
    assert doc["recall"]["latency_ms_p50"] == tuning["latency_ms_p50"] and doc["recall"]["target_recall"] == 0.9
    # --add keeps the target the index was built with and measures again on all the vectors.
    more = build_index([world / "images"], out, add=True)
    again = json.loads((out / MANIFEST_FILE).read_text())["index"]["tuning"]
    assert more.added == 0 and again["target_recall"] == 0.9 and again["sample_queries"] == 60


def test_flat_is_exact_and_auto_picks_flat_for_a_target_of_one(world, tmp_path):
    from pcclip_cli.retrieval import FLAT_MAX, auto_index_type

    assert auto_index_type(FLAT_MAX + 1, 1.0) == IndexType.flat
    assert auto_index_type(FLAT_MAX + 1, 0.95) == IndexType.ivf and auto_index_type(FLAT_MAX + 1) == IndexType.ivf
    summary = build_index([world / "captions.jsonl"], tmp_path / "idx", model="pcclip-micro", target_recall=1.0)
    tuning = json.loads((tmp_path / "idx" / MANIFEST_FILE).read_text())["index"]["tuning"]
    assert summary.index_type == "flat" and tuning["measured_recall"] == 1.0 and tuning["param"] is None


def test_index_command_warns_when_the_latency_bound_is_out_of_reach(cli, world, tmp_path):
    out = tmp_path / "idx"
    result = cli("index", world / "captions.jsonl", "--out", out, "--model", "pcclip-micro", "--index-type", "ivf",
                 "--max-latency-ms", "0.000001")
    assert result.code == 0, result.stderr
    assert "warning:" in result.stderr and "no setting meets" in result.stderr
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["count"] == 60 and manifest["index"]["tuning"]["met"] is False
    assert retrieve(out, Query("text", "a blue square"), k=3)["results"]
