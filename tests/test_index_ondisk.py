"""`index --on-disk` (embedding shards, IVF lists merged on disk) and `--engine ray`, through the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, assert_clean_error


def test_on_disk_index_retrieves_like_the_in_memory_one(cli, world, tmp_path):
    caps = world / "captions.jsonl"
    built = cli("index", caps, "--out", tmp_path / "disk", "--model", "pcclip-micro", "--on-disk",
                "--shard-size", "16", "--target-recall", "0.9", "--json")
    assert built.code == 0, built.stderr
    s = built.json()
    assert (s["count"], s["shards"], s["storage"], s["index_type"]) == (60, 4, "on-disk", "ivf")
    assert s["recall"] >= 0.9
    assert (tmp_path / "disk" / "vectors.ivfdata").is_file()
    manifest = json.loads((tmp_path / "disk" / "manifest.json").read_text())
    assert manifest["index"]["tuning"]["target_recall"] == 0.9 and manifest["index"]["params"]["nprobe"] >= 1
    flat = cli("index", caps, "--out", tmp_path / "flat", "--model", "pcclip-micro", "--index-type", "flat", "--json")
    assert flat.code == 0, flat.stderr
    shutil.move(tmp_path / "disk", tmp_path / "moved")  # the ivfdata is found beside the index, wherever it is
    a = cli("retrieve", "--index", tmp_path / "moved", "--text", "a red circle", "-k", "5", "--json")
    b = cli("retrieve", "--index", tmp_path / "flat", "--text", "a red circle", "-k", "5", "--json")
    assert a.code == 0, a.stderr
    assert a.stdout.lstrip().startswith("{")  # faiss's notes stay off stdout
    ranked = [h["id"] for h in a.json()["results"]]
    assert len(ranked) == 5 and len(set(ranked) & {h["id"] for h in b.json()["results"]}) >= 4


def test_on_disk_refuses_add_and_other_types(cli, world, tmp_path):
    caps = world / "captions.jsonl"
    assert_clean_error(cli("index", caps, "--out", tmp_path / "i", "--on-disk", "--add"), "--add")
    assert_clean_error(cli("index", caps, "--out", tmp_path / "i", "--on-disk", "--index-type", "hnsw"), "ivf")


needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: the Ray engine is the optional extra pcclip[ray]")


def _pcclip(*args, **kw):
    env = {**os.environ, "PCCLIP_RAY_CPUS": "2", "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen([sys.executable, "-m", "pcclip_cli.cli.main", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


@needs_ray
def test_unreachable_ray_address_is_one_error_line(run_pcclip, world, tmp_path):
    result = run_pcclip("index", world / "captions.jsonl", "--out", tmp_path / "i", "--engine", "ray",
                        "--ray-address", "127.0.0.1:9", "--model", "pcclip-micro", timeout=120)
    assert_clean_error(result, "cannot reach the Ray cluster", "127.0.0.1:9")


@needs_ray
def test_local_ray_job_embeds_each_image_once_as_the_single_process_does(world, tmp_path):
    """A local Ray (2 CPUs) embeds the 60 images in shards of 16: every image once, vectors equal to the
    single-process pass of the same model: retrieval over the two indexes (the Ray job's on-disk IVF tuned to
    recall 1.0, and a flat one) ranks the same images with the same
    scores."""
    ray_args = ("index", world / "captions.jsonl", "--out", tmp_path / "ray", "--embeddings", tmp_path / "emb",
                "--engine", "ray", "--model", "pcclip-micro", "--shard-size", "16", "--batch-size", "8",
                "--target-recall", "1.0", "--json")
    stdout, stderr = _pcclip(*ray_args).communicate(timeout=400)
    assert stdout.strip(), stderr
    s = json.loads(stdout)
    assert (s["count"], s["shards"], s["engine"], s["embedded"]) == (60, 4, "ray", 60)
    ids = [json.loads(x)["id"] for f in sorted((tmp_path / "emb").glob("items-*.jsonl"))
           for x in f.read_text().splitlines()]
    assert len(ids) == 60 and len(set(ids)) == 60
    one = _pcclip("index", world / "captions.jsonl", "--out", tmp_path / "one", "--model", "pcclip-micro",
                  "--index-type", "flat", "--json")
    stdout, stderr = one.communicate(timeout=400)
    assert one.returncode == 0, stderr
    for text in ("a red circle", "a small blue square"):
        hits = []
        for index in ("ray", "one"):
            found = subprocess.run([sys.executable, "-m", "pcclip_cli.cli.main", "retrieve", "--index",
                                    str(tmp_path / index), "--text", text, "-k", "10", "--json"],
                                   capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
            assert found.returncode == 0, found.stderr
            hits.append(json.loads(found.stdout)["results"])
        assert [h["id"] for h in hits[0]] == [h["id"] for h in hits[1]]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(*hits, strict=True)) < 1e-4


@needs_ray
@pytest.mark.slow  # ~2.5 minutes on two shared cores: Ray's start, twice, and a model per worker
def test_ray_job_killed_midway_resumes_with_each_image_once(world, tmp_path):
    """A local Ray (2 CPUs) embeds 60 images in shards of 8; the job is killed once the first shard is written,
    and the rerun embeds only the unfinished shards, each image ending up in the index exactly once."""
    out, emb = tmp_path / "idx", tmp_path / "emb"
    args = ("index", world / "captions.jsonl", "--out", out, "--embeddings", emb, "--engine", "ray",
            "--model", "pcclip-micro", "--shard-size", "8", "--batch-size", "4", "--json")
    first = _pcclip(*args)
    deadline = time.time() + 240
    while not (emb / "items-00000.jsonl").exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    killed = first.poll() is None
    if killed:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray workers it started
    first.communicate()
    done_before = len(list(emb.glob("items-*.jsonl")))
    assert done_before >= 1
    second = _pcclip(*args)
    stdout, stderr = second.communicate(timeout=400)
    assert second.returncode == 0, stderr
    s = json.loads(stdout)
    assert s["count"] == 60 and s["shards"] == 8 and s["engine"] == "ray"
    assert s["shards_resumed"] == done_before and s["embedded"] == 60 - 8 * done_before
    ids = [json.loads(x)["id"] for f in sorted(emb.glob("items-*.jsonl")) for x in f.read_text().splitlines()]
    assert len(ids) == 60 and len(set(ids)) == 60
    if killed:
        assert done_before < 8
