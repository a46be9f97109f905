"""`pcclip retrieve --attribute blue` with no --index: the default index, built on first use and cached.

The real default (shapes-clip on its 2,000-image world) takes minutes to train, so these tests point the
default at pcclip-micro and a 60-image world; the code path is the same.
"""

import json

import pytest

from pcclip_cli.retrieval import MANIFEST_FILE, load_index
from pcclip_cli.retrieval import default_index as di


@pytest.fixture
def tiny_default(monkeypatch, tmp_path):
    monkeypatch.setenv("PCCLIP_HOME", str(tmp_path / "home"))
    spec = di.DefaultIndexSpec(model="pcclip-micro", world_images=60, world_seed=0)
    monkeypatch.setattr(di, "DEFAULT_INDEX", spec)
    return spec


def test_retrieve_without_index_builds_the_default_once(cli, tiny_default, tmp_path):
    first = cli("retrieve", "--attribute", "blue", "--k", "5", "--json")
    assert first.code == 0, first.stderr
    assert "building the default index (first use)" in first.stderr and "pcclip-micro" in first.stderr
    doc = first.json()
    where = tmp_path / "home" / "models" / tiny_default.name
    assert doc["index"] == str(where) and doc["index_model"] == "pcclip-micro" and len(doc["results"]) == 5
    # Only the held-out test split of the world is indexed.
    world = tmp_path / "home" / "worlds" / "shapes-n60-seed0"
    test_ids = {json.loads(line)["id"] for line in (world / "captions-test.jsonl").read_text().splitlines()}
    idx = load_index(where)
    assert idx.count == len(test_ids) > 0
    assert {item_id for _, item_id, _ in idx.items(list(range(idx.count))).values()} == test_ids
    idx.close()
    again = cli("retrieve", "--attribute", "blue", "--k", "5", "--json")
    assert again.code == 0 and "building" not in again.stderr
    assert [r["path"] for r in again.json()["results"]] == [r["path"] for r in doc["results"]]


def test_default_index_is_rebuilt_when_its_model_changed(tiny_default):
    out = di.ensure_default_index()
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["model"]["image_fingerprint"] = "sha:another-tower"
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    notices = []
    assert di.ensure_default_index(notify=notices.append) == out
    assert len(notices) == 1 and "its model has changed" in notices[0]
    assert json.loads((out / MANIFEST_FILE).read_text())["model"]["image_fingerprint"] != "sha:another-tower"
    quiet = []
    di.ensure_default_index(notify=quiet.append)
    assert quiet == []


def test_the_shipped_default_is_shapes_clip_on_its_own_world():
    spec = di.DefaultIndexSpec()
    from pcclip_cli.cli.rank import DEFAULT_MODEL
    from pcclip_cli.training.shapes_recipe import ShapesRecipe

    assert spec.model == DEFAULT_MODEL and spec.split == "test"
    assert (spec.world_images, spec.world_seed) == (ShapesRecipe().images, ShapesRecipe().seed)
