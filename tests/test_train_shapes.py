"""The shapes base model: trained on first use into $PCCLIP_HOME/models/shapes-clip, reachable by its short name,
its metrics recorded, and its documented command equal to the recipe."""

import shlex

import pytest

from pcclip_cli.clip.checkpoints import read_checkpoint_meta
from pcclip_cli.models import SpecKind, load_clip, shapes_model_dir
from pcclip_cli.training import IDENTITY_KEYS, resolve_config
from pcclip_cli.training.shapes_recipe import ShapesRecipe, train_shapes_base

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_shapes_clip_is_reachable_by_name_with_its_metrics(shapes_clip, world):
    assert shapes_clip.kind == SpecKind.shapes and shapes_clip.arch == "pcclip-micro"
    meta = read_checkpoint_meta(shapes_model_dir())
    assert meta["objective"] == "caption" and meta["scope"] == "both"
    assert meta["base"].startswith("pcclip-micro (random init")
    zs = meta["metrics"]["zero_shot_test"]
    assert set(zs) == {"shape", "colour", "colour_shape", "size"} and all(0 <= v <= 1 for v in zs.values())
    assert meta["metrics"]["wall_seconds"] > 0 and meta["shapes_recipe"]["world"] == str(world)
    # Only the final checkpoint is installed, not the run's resumable epoch checkpoints.
    assert not (shapes_model_dir() / "checkpoints").exists()
    # A second call finds it and returns at once; `pcclip models`-style loading works by name.
    assert train_shapes_base(shapes_model_dir(), recipe=ShapesRecipe.for_tests(), world_dir=world) == shapes_model_dir()
    again = load_clip("shapes-clip", "cpu")  # the process cache may have been cycled by other tests' models
    assert again.fingerprint == shapes_clip.fingerprint


def test_documented_command_is_the_recipe(tmp_path):
    recipe = ShapesRecipe()
    world = tmp_path / "w"
    text = recipe.command(str(world), str(tmp_path / "out"))
    data_line, train_cmd = text.split("\n", 1)
    assert data_line.split()[:3] == ["pcclip", "data", "shapes"] and "--images 2000" in data_line
    words = shlex.split(train_cmd.replace("\\\n", " "))
    assert words[:2] == ["pcclip", "train"]
    flags = dict(zip(words[2::2], words[3::2], strict=True))
    overrides = {k[2:].replace("-", "_"): v for k, v in flags.items()}
    for key in ("lr", "weight_decay"):
        overrides[key] = float(overrides[key])
    for key in ("warmup_steps", "epochs", "batch_size", "seed"):
        overrides[key] = int(overrides[key])
    from_command = resolve_config(None, overrides)
    from_recipe = recipe.train_config(world / "captions.jsonl", tmp_path / "out")
    # Everything that decides the weights agrees (saving and logging cadence do not).
    for key in (*IDENTITY_KEYS, "epochs", "out"):
        assert getattr(from_command, key) == getattr(from_recipe, key), key
