"""FAISS retrieval: building, querying, extending and refusing indexes, with real faiss and a real CLIP model."""

import json
import shutil
import sqlite3

import numpy as np
import pytest

from conftest import assert_clean_error
from pcclip_cli.clip.embeddings import embed_images
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.data.attributes import attribute_ensemble, expand_attribute
from pcclip_cli.retrieval import (
    ITEMS_FILE,
    MANIFEST_FILE,
    IndexFileError,
    Query,
    build_index,
    choose_backend,
    gpu_available,
    load_index,
    model_for_index,
    retrieve,
    search,
)


@pytest.fixture(scope="module")
def index_dir(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("indexes") / "w60"
    build_index([world / "captions.jsonl"], out, model="pcclip-micro")
    return out


@pytest.fixture(scope="module")
def world_vectors(world, micro_clip):
    from pcclip_cli.data.records import read_captions

    recs = read_captions(world / "captions.jsonl")
    res = embed_images(micro_clip, [r.path for r in recs])
    return [str(p) for p in res.paths], res.vectors, recs


def half_manifest(world, tmp_path, n=30):
    """The first n records of the world's captions, as a manifest with absolute image paths."""
    out = tmp_path / f"first{n}.jsonl"
    with open(out, "w") as fh:
        for line in (world / "captions.jsonl").read_text().splitlines()[:n]:
            rec = json.loads(line)
            rec["image"] = str(world / rec["image"])
            fh.write(json.dumps(rec) + "\n")
    return out


def test_manifest_records_model_and_index(index_dir, micro_clip):
    manifest = json.loads((index_dir / MANIFEST_FILE).read_text())
    assert manifest["model"]["spec"] == "pcclip-micro"
    assert manifest["model"]["fingerprint"] == micro_clip.fingerprint
    assert manifest["model"]["image_fingerprint"] == micro_clip.image_fingerprint
    assert manifest["dim"] == 64 and manifest["count"] == 60
    assert manifest["index"]["type"] == "flat" and manifest["index"]["chosen"] == "auto"
    assert manifest["metric"] == "inner_product" and manifest["pcclip_version"]
    # Paths are stored relative to the index, so the world and the index can move together.
    rows = sqlite3.connect(index_dir / ITEMS_FILE).execute("SELECT path, meta FROM items").fetchall()
    assert len(rows) == 60 and all(p.startswith("../") for p, _ in rows)
    assert "attributes" in json.loads(rows[0][1])


def test_search_matches_numpy_brute_force(index_dir, world_vectors):
    paths, vecs, _ = world_vectors
    idx = load_index(index_dir)
    queries = vecs[[3, 17, 41]]
    hits = search(idx, queries, k=5)  # several queries, one load
    for row, q in zip(hits, queries, strict=True):
        order = np.argsort(-(vecs @ q))[:5]
        assert [h.path for h in row] == [paths[i] for i in order]
        assert np.allclose([h.score for h in row], (vecs @ q)[order], atol=1e-5)
    assert hits[0][0].path == paths[3] and hits[0][0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0][0].meta["attributes"]["count"] in (1, 2)
    assert len(search(idx, queries[0], k=500)[0]) == 60  # k beyond the index size gives every image once


def averaged(clip, sentences):
    """The prompt-ensemble query, computed here from the sentences: mean of unit embeddings, renormalised."""
    e = clip.encode_texts(list(sentences)).mean(axis=0)
    return e / np.linalg.norm(e)


def test_attribute_query_ranks_by_the_averaged_ensemble(cli, index_dir, world_vectors, micro_clip):
    paths, vecs, _ = world_vectors
    result = cli("retrieve", "--index", index_dir, "--attribute", "larger", "--k", "7", "--json")
    assert result.code == 0, result.stderr
    doc = result.json()
    sentences = doc["query"]["sentences"]
    # The comparative sentence `rank` always used is one of them, beside plain descriptions of one image.
    assert doc["query"]["sentence"] == sentences[0] == expand_attribute("larger").text
    assert "The first image is large, while the second is not." in sentences
    assert any(s.startswith("a ") and "large" in s for s in sentences) and len(set(sentences)) == len(sentences) >= 6
    t = averaged(micro_clip, sentences)
    order = np.argsort(-(vecs @ t))[:7]
    assert [r["path"] for r in doc["results"]] == [paths[i] for i in order]
    assert [r["rank"] for r in doc["results"]] == list(range(1, 8))


def test_than_keeps_images_with_more_of_the_attribute(index_dir, world_vectors, micro_clip):
    paths, vecs, _ = world_vectors
    t = averaged(micro_clip, attribute_ensemble("blue").sentences)
    s = vecs @ t
    ref = int(np.argsort(s)[len(s) // 2])  # a reference in the middle: about half the images beat it
    doc = retrieve(index_dir, Query("attribute", "blue", than=paths[ref]), k=100)
    got = [r["path"] for r in doc["results"]]
    expected = [paths[i] for i in np.argsort(-s) if (vecs[i] - vecs[ref]) @ t > 0]
    assert got == expected and paths[ref] not in got and 20 < len(got) < 40
    assert all(r["score"] > 0 for r in doc["results"])
    assert np.allclose([r["score"] for r in doc["results"]], [(vecs[paths.index(p)] - vecs[ref]) @ t for p in got],
                       atol=1e-5)


def test_text_and_image_queries_through_cli(cli, index_dir, world_vectors):
    paths, _, _ = world_vectors
    by_image = cli("retrieve", "--index", index_dir, "--image", paths[9], "--k", "3", "--json").json()
    assert by_image["results"][0]["path"] == paths[9] and by_image["query"]["kind"] == "image"
    table = cli("retrieve", "--index", index_dir, "--text", "a red circle", "--k", "4")
    # The hits are data on stdout (rank, score, path, metadata), the table for people on stderr.
    assert table.code == 0 and [ln.split("\t")[0] for ln in table.stdout.splitlines()] == ["1", "2", "3", "4"]
    assert "rank" in table.stderr and "score" in table.stderr
    rows = [ln.split("│")[1].strip() for ln in table.stderr.splitlines() if ln.startswith("│") and ln.split("│")[1].strip()]
    assert rows == ["1", "2", "3", "4"]


def test_approximate_types_build_and_agree_on_small_index(world, tmp_path, world_vectors):
    paths, vecs, _ = world_vectors
    q = vecs[[5, 25]]
    for kind in ("ivf", "hnsw"):
        summary = build_index([world / "captions.jsonl"], tmp_path / kind, model="pcclip-micro", index_type=kind)
        manifest = json.loads((tmp_path / kind / MANIFEST_FILE).read_text())
        assert summary.index_type == kind == manifest["index"]["type"] and manifest["index"]["chosen"] == "user"
        assert manifest["index"]["params"] == summary.params and summary.params
        idx = load_index(tmp_path / kind)
        for row, qq in zip(search(idx, q, k=5), q, strict=True):
            assert [h.path for h in row] == [paths[i] for i in np.argsort(-(vecs @ qq))[:5]]
    assert json.loads((tmp_path / "ivf" / MANIFEST_FILE).read_text())["index"]["params"]["nlist"] == 1


def test_add_appends_without_re_embedding(world, tmp_path, monkeypatch, world_vectors):
    monkeypatch.setenv("PCCLIP_HOME", str(tmp_path / "home"))  # an empty embedding cache for this test
    paths, vecs, _ = world_vectors
    out = tmp_path / "idx"
    first = build_index([half_manifest(world, tmp_path)], out, model="pcclip-micro")
    assert first.count == 30 and first.embedded == 30
    before = load_index(out)
    old_rows = before.items(list(range(30)))
    old_vecs = before.index.reconstruct_n(0, 30)
    before.close()
    added = build_index([world / "captions.jsonl"], out, add=True)  # model comes from the manifest
    assert (added.added, added.skipped_present, added.embedded, added.count) == (30, 30, 30, 60)
    again = build_index([world / "captions.jsonl"], out, add=True)
    assert (again.added, again.skipped_present, again.count) == (0, 60, 60)
    idx = load_index(out)
    assert idx.items(list(range(30))) == old_rows
    assert np.array_equal(idx.index.reconstruct_n(0, 30), old_vecs)
    assert sorted(p for p, _, _ in idx.items(list(range(60))).values()) == sorted(paths)
    assert search(idx, vecs[50], k=1)[0][0].path == paths[50]


def test_rebuild_replaces_and_refuses_foreign_directory(world, tmp_path):
    out = tmp_path / "idx"
    build_index([half_manifest(world, tmp_path)], out, model="pcclip-micro")
    assert build_index([world / "captions.jsonl"], out, model="pcclip-micro").count == 60
    assert load_index(out).count == 60
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(PcclipError, match="not a pcclip index"):
        build_index([world / "captions.jsonl"], foreign, model="pcclip-micro")
    assert (foreign / "keep.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".*partial*"))


def text_scope_checkpoint(path, perturb: str):
    """A real checkpoint of pcclip-micro with one tower's weights changed, as a finetune would leave it."""
    import torch

    from pcclip_cli.clip.checkpoints import save_checkpoint
    from pcclip_cli.models import load_clip

    clip = load_clip("pcclip-micro", "cpu", fresh=True)
    tower = clip.model.transformer if perturb == "text" else clip.model.visual
    with torch.no_grad():
        for p in tower.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_checkpoint(clip.model, path, arch="pcclip-micro", meta={"base": "pcclip-micro", "scope": perturb})
    return path


def test_text_scope_checkpoint_is_accepted_other_towers_refused(index_dir, tmp_path, world_vectors):
    from pcclip_cli.models import load_clip

    text_ckpt = text_scope_checkpoint(tmp_path / "text-ft", "text")
    base = retrieve(index_dir, Query("attribute", "larger"), k=5)
    tuned = retrieve(index_dir, Query("attribute", "larger"), k=5, model=str(text_ckpt))
    assert tuned["model"] == str(text_ckpt.resolve()) and base["model"] == "pcclip-micro"
    assert [r["score"] for r in tuned["results"]] != [r["score"] for r in base["results"]]
    # The finetuned text encoder really is used: its scores are g . f_ft(T).
    t = averaged(load_clip(str(text_ckpt), "cpu"), attribute_ensemble("larger").sentences)
    _, vecs, _ = world_vectors
    assert tuned["results"][0]["score"] == pytest.approx(float(np.max(vecs @ t)), abs=1e-5)
    image_ckpt = text_scope_checkpoint(tmp_path / "image-ft", "image")
    idx = load_index(index_dir)
    with pytest.raises(IndexFileError, match="different image tower"):
        model_for_index(idx, str(image_ckpt))


def test_model_with_other_image_tower_is_refused_in_a_real_process(run_pcclip, index_dir):
    result = run_pcclip("retrieve", "--index", index_dir, "--text", "a red circle", "--model", "pcclip-tiny")
    assert_clean_error(result, "different image tower", "pcclip-tiny")
    assert result.stdout == ""


def test_add_with_other_model_is_refused(world, tmp_path):
    out = tmp_path / "idx"
    build_index([half_manifest(world, tmp_path, 10)], out, model="pcclip-micro")
    with pytest.raises(IndexFileError, match="different image tower"):
        build_index([world / "captions.jsonl"], out, model="pcclip-tiny", add=True)
    assert load_index(out).count == 10


def test_bad_inputs_are_one_line_errors(cli, index_dir, tmp_path, world):
    missing = tmp_path / "nothing"
    cases = {
        "index not found": ("retrieve", "--index", missing, "--text", "x"),
        "manifest.json is missing": ("retrieve", "--index", tmp_path, "--text", "x"),
        "--k must be at least 1": ("retrieve", "--index", index_dir, "--text", "x", "--k", "0"),
        "--image image not found": ("retrieve", "--index", index_dir, "--image", missing / "a.png"),
        "exactly one query": ("retrieve", "--index", index_dir, "--text", "x", "--attribute", "blue"),
        "--than compares": ("retrieve", "--index", index_dir, "--text", "x", "--than", world / "images"),
        "no images": ("index", tmp_path / "empty", "--out", tmp_path / "idx", "--model", "pcclip-micro", "--json"),
    }
    (tmp_path / "empty").mkdir()
    for fragment, args in cases.items():
        result = cli(*args)
        assert result.code == 1, (fragment, result.stderr)
        assert len(result.error_lines()) == 1 and fragment in result.error_lines()[0], (fragment, result.stderr)
        assert result.stdout == ""
    assert not (tmp_path / "idx").exists()


def test_corrupt_manifest_and_torn_files_are_refused(run_pcclip, index_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    (broken / MANIFEST_FILE).write_text('{"format": "pcclip-index", "dim": ')
    assert_clean_error(run_pcclip("retrieve", "--index", broken, "--text", "x"), "corrupt")
    shutil.copy(index_dir / MANIFEST_FILE, broken / MANIFEST_FILE)
    db = sqlite3.connect(broken / ITEMS_FILE)
    with db:
        db.execute("DELETE FROM items WHERE rowid >= 50")
    db.close()
    with pytest.raises(IndexFileError, match="inconsistent"):
        load_index(broken)
    (broken / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexFileError, match="corrupt"):
        load_index(broken)


def test_gpu_path_is_detected_at_run_time_and_falls_back_to_cpu(index_dir, world_vectors, monkeypatch):
    import faiss

    _, vecs, _ = world_vectors
    monkeypatch.setenv("PCCLIP_DEVICE", "auto")
    has_gpu = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    assert gpu_available() == has_gpu
    auto = load_index(index_dir)
    cpu = load_index(index_dir, use_gpu=False)
    assert auto.backend == ("gpu" if has_gpu else "cpu") and cpu.backend == "cpu"
    a, c = search(auto, vecs[:4], k=5), search(cpu, vecs[:4], k=5)
    assert [[h.path for h in r] for r in a] == [[h.path for h in r] for r in c]
    if not has_gpu:
        with pytest.raises(PcclipError, match="no GPU support"):
            choose_backend(True)
    assert choose_backend(device="cpu") == "cpu" and load_index(index_dir, device="cpu").backend == "cpu"
    assert choose_backend(False, device="cuda") == "cpu"
    monkeypatch.setenv("PCCLIP_DEVICE", "cpu")  # the resolver's fallback for library users
    assert choose_backend() == "cpu"
    assert choose_backend(device="auto") == ("gpu" if has_gpu else "cpu")  # an argument wins over the variable


def test_index_command_builds_and_adds(cli, world, tmp_path):
    out = tmp_path / "idx"
    first = cli("index", half_manifest(world, tmp_path, 20), "--out", out, "--model", "pcclip-micro",
                "--index-type", "hnsw", "--json")
    assert first.code == 0, first.stderr
    assert first.json()["count"] == 20 and first.json()["index_type"] == "hnsw" and first.json()["created"]
    more = cli("index", world / "images", "--out", out, "--add", "--json").json()
    assert (more["added"], more["skipped_present"], more["count"], more["created"]) == (40, 20, 60, False)
    assert more["index_type"] == "hnsw" and more["model"] == "pcclip-micro"
    wrong = cli("index", world / "images", "--out", out, "--add", "--index-type", "flat", "--json")
    assert wrong.code == 1 and "keeps the index type" in wrong.error_lines()[0]


def test_index_command_prints_a_summary_for_people(cli, world, tmp_path):
    result = cli("index", half_manifest(world, tmp_path, 5), "--out", tmp_path / "idx", "--model", "pcclip-micro")
    assert result.code == 0 and result.stdout == ""
    assert "wrote" in result.stderr and "5 images, flat index" in result.stderr


def test_ivf_params_scale_with_size_and_full_probe_is_exact():
    from pcclip_cli.retrieval import FLAT_MAX, IndexType, auto_index_type, index_params, make_faiss_index

    assert auto_index_type(FLAT_MAX) == IndexType.flat and auto_index_type(FLAT_MAX + 1) == IndexType.ivf
    big = index_params(IndexType.ivf, 1_000_000)
    assert big["nlist"] == 1000 and big["nprobe"] == 63 and big["train_sample"] == 64_000
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((5000, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    params = index_params(IndexType.ivf, len(vecs))
    assert params["train_sample"] < len(vecs)  # k-means on a sample
    index, backend = make_faiss_index(IndexType.ivf, 16, params, vecs)
    assert index.ntotal == 5000 and index.is_trained
    import faiss

    faiss.extract_index_ivf(index).nprobe = params["nlist"]  # probing every list is an exact search
    _, ids = index.search(vecs[:20], 10)
    exact = np.argsort(-(vecs[:20] @ vecs.T), axis=1)[:, :10]
    assert np.array_equal(np.sort(ids, axis=1), np.sort(exact, axis=1))
