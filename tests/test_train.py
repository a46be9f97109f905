"""`pcclip train`: objectives, scopes, checkpoints, config files, weight averaging and bad input, with tiny real
models on the shapes world."""

import json

import pytest
import torch

from conftest import assert_clean_error
from pcclip_cli.clip.checkpoints import read_checkpoint_meta
from pcclip_cli.core.errors import PcclipError
from pcclip_cli.core.io import read_jsonl
from pcclip_cli.finetune import train
from pcclip_cli.models import load_clip
from pcclip_cli.training import Objective, TrainConfig, Trainer, TrainingError, difference_accuracy
from pcclip_cli.training.pair_data import oracle_comparatives, read_comparative_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pairs(world, tmp_path_factory):
    """Oracle comparatives over the whole 60-image world (texts from the known attributes)."""
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    oracle_comparatives(world, path, pairs=160, split=None, seed=1)
    return path


def _cfg(world, pairs, out, **kw):
    base = dict(model="pcclip-micro", comparatives=str(pairs), captions=str(world / "captions.jsonl"), out=str(out),
                lr=1e-3, epochs=2, batch_size=32, log_every=1)
    return TrainConfig(**{**base, **kw})


def _state(model, prefix=""):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(prefix)}


def _changed(before: dict, after: dict) -> set:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_oracle_comparatives_join_the_captions(world, pairs):
    ids = {r["id"] for _, r in read_jsonl(world / "captions.jsonl")}
    recs = [r for _, r in read_jsonl(pairs)]
    assert len(recs) == 160
    assert all(r["kind"] == "pairs" and r["first"] in ids and r["second"] in ids and r["text"] for r in recs)
    data = read_comparative_pairs(pairs, world / "captions.jsonl")
    assert len(data) == 160 and data.counts["kept"] == 160
    assert max(data.first + data.second) == len(data.images) - 1


def test_comparatives_filtering_is_counted(world, tmp_path):
    recs = [r for _, r in read_jsonl(world / "captions.jsonl")]
    train_ids = [r["id"] for r in recs if r["split"] == "train"]
    test_id = next(r["id"] for r in recs if r["split"] == "test")
    rows = [{"kind": "pairs", "first": a, "second": b, "text": f"pair {k}"}
            for k, (a, b) in enumerate(zip(train_ids[:10], train_ids[1:11], strict=True))]
    rows += [{"kind": "classes", "first": "red", "second": "blue", "text": "x"},
             {"kind": "pairs", "first": train_ids[0], "second": train_ids[1], "text": "  "},
             {"kind": "pairs", "first": train_ids[0], "second": train_ids[0], "text": "same"},
             {"kind": "pairs", "first": train_ids[0], "second": test_id, "text": "crosses splits"}]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = read_comparative_pairs(path, world / "captions.jsonl", split="train")
    assert data.counts == {"read": 14, "kept": 10, "not_pairs": 1, "empty_text": 1, "other_split": 1, "same_image": 1}
    assert len(read_comparative_pairs(path, world / "captions.jsonl", split="train", max_pairs=4)) == 4
    assert len(read_comparative_pairs(path, world / "captions.jsonl")) == 11  # no split: the cross-split pair too


def test_pc_text_scope_through_cli(cli, world, pairs, tmp_path, micro_clip):
    out = tmp_path / "run"
    res = cli("train", "--model", "pcclip-micro", "--comparatives", pairs, "--captions", world / "captions.jsonl",
              "--out", out, "--lr", "1e-3", "--epochs", "2", "--batch-size", "32", "--seed", "3",
              "--eval-task", world / "classes" / "colour.jsonl", "--log-every", "1", "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["checkpoint"] == str(out) and doc["steps"] == 10 and doc["epochs"] == 2
    assert 0.0 <= doc["metrics"]["eval"]["zero_shot_accuracy"] <= 1.0
    meta = read_checkpoint_meta(out)
    assert (meta["scope"], meta["loss"], meta["objective"], meta["arch"]) == ("text", "contrastive", "pc", "pcclip-micro")
    assert meta["training"]["lr"] == 1e-3 and meta["training"]["seed"] == 3 and meta["training"]["complete"]
    assert {d["role"] for d in meta["data"]} == {"comparatives", "captions"}
    assert all(len(d["sha256"]) == 64 for d in meta["data"])
    assert meta["pcclip_version"] and meta["metrics"]["loss"] > 0
    # Text scope keeps the base image tower: same embedding cache key, same visual weights.
    assert meta["image_fingerprint"] == micro_clip.image_fingerprint
    trained = load_clip(str(out), "cpu")
    assert trained.image_fingerprint == micro_clip.image_fingerprint
    base, after = _state(micro_clip.model), _state(trained.model)
    changed = _changed(base, after)
    assert changed and all(not k.startswith("visual.") for k in changed)
    assert "token_embedding.weight" in changed and "text_projection" in changed
    # Per-run files: metrics (steps and epochs, with the sanity eval), the resolved config, a checkpoint.
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2]
    assert all("eval" in r for r in records if r["event"] == "epoch")
    assert sum(r["event"] == "step" for r in records) == 10
    assert "seed = 3" in (out / "config.toml").read_text()
    assert (out / "checkpoints" / "epoch-0002" / "trainer_state.json").exists()
    assert not (out / "checkpoints" / "epoch-0001").exists()  # keep_checkpoints = 1


def test_weights_load_in_plain_open_clip(world, pairs, tmp_path):
    import open_clip
    from safetensors.torch import load_file

    out = tmp_path / "run"
    train(_cfg(world, pairs, out, epochs=1))
    plain = open_clip.create_model("pcclip-micro", pretrained=None)
    plain.load_state_dict(load_file(str(out / "model.safetensors")))  # strict: every key matches
    ours = load_clip(str(out), "cpu")
    tokens = ours.tokenizer(["the first object is red whereas the second object is blue"])
    with torch.no_grad():
        assert torch.allclose(plain.encode_text(tokens), ours.model.encode_text(tokens), atol=1e-6)


def _trainer(cfg):
    return Trainer(cfg, load_clip(cfg.model, "cpu", fresh=True)).prepare()


def _count_calls(module):
    calls = []
    module.register_forward_hook(lambda *a: calls.append(1))
    return calls


def test_text_scope_never_runs_the_image_tower(world, pairs, tmp_path, micro_clip):
    from pcclip_cli.clip.embeddings import EmbeddingCache

    trainer = _trainer(_cfg(world, pairs, tmp_path / "run", epochs=1))
    calls = _count_calls(trainer.model.visual)
    trainer.fit()
    assert calls == []
    # The image embeddings came through the shared cache of the base image tower.
    assert EmbeddingCache(micro_clip.image_fingerprint).path.exists()


def test_image_scope_trains_only_the_image_tower(world, pairs, tmp_path, micro_clip):
    trainer = _trainer(_cfg(world, pairs, tmp_path / "run", epochs=1, scope="image"))
    calls = _count_calls(trainer.model.transformer)
    trainer.fit()
    assert calls == []  # texts were embedded once, before the loop
    changed = _changed(_state(micro_clip.model), _state(trainer.model))
    assert changed and all(k.startswith("visual.") for k in changed)
    meta = read_checkpoint_meta(tmp_path / "run")
    assert meta["scope"] == "image" and meta["image_fingerprint"] != micro_clip.image_fingerprint


def test_reference_params_train_only_the_text_transformer(world, pairs, tmp_path, micro_clip):
    trainer = _trainer(_cfg(world, pairs, tmp_path / "run", epochs=1, reference_params=True))
    trainer.fit()
    changed = _changed(_state(micro_clip.model), _state(trainer.model))
    assert changed and all(k.startswith("transformer.") for k in changed)


def test_both_scopes_with_mse_and_rank_terms(world, pairs, tmp_path, micro_clip):
    out = tmp_path / "run"
    result = train(_cfg(world, pairs, out, epochs=1, scope="both", loss="mse", rank_weights=[1 / 16, 1 / 8]))
    changed = _changed(_state(micro_clip.model), _state(load_clip(str(out), "cpu").model))
    assert any(k.startswith("visual.") for k in changed) and "text_projection" in changed
    step = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert set(step["parts"]) == {"base", "in_modal", "cross_modal"}
    assert result.steps == 5


def test_caption_objective_from_random_init_learns(world, tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(model="pcclip-micro", objective=Objective.caption, init="random", scope="both",
                      captions=str(world / "captions.jsonl"), out=str(out), optimizer="adamw", lr=2e-3,
                      schedule="cosine", warmup_steps=10, epochs=10, batch_size=16, log_every=1, seed=5)
    train(cfg)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["event"] == "epoch"]
    assert losses[-1] < losses[0] - 0.3, losses
    meta = read_checkpoint_meta(out)
    assert meta["base"] == "pcclip-micro (random init, seed 5)" and meta["scope"] == "both"
    assert meta["training"]["lr_resolved"] == 2e-3


def test_paper_learning_rates_are_the_defaults(world, pairs, tmp_path):
    assert _cfg(world, pairs, tmp_path, lr=None).resolved_lr == 1e-8
    cfg = TrainConfig(objective="caption", captions="c.jsonl", out=str(tmp_path))
    assert cfg.resolved_lr == 1e-6 and cfg.learnable_scale
    assert (cfg.batch_size, cfg.epochs, cfg.gamma, cfg.optimizer.value) == (512, 20, 0.9, "adam")


def test_nan_loss_stops_and_names_the_step(world, pairs, tmp_path):
    with pytest.raises(TrainingError, match=r"at step 1 \(epoch 1, batch 1\)"):
        train(_cfg(world, pairs, tmp_path / "run", temperature=1e-45))


def test_weight_average_flag_and_subcommand(cli, world, pairs, tmp_path, micro_clip):
    base = _state(micro_clip.model)
    out0 = tmp_path / "a0"
    train(_cfg(world, pairs, out0, epochs=1, weight_average=0.0))
    assert _changed(base, _state(load_clip(str(out0), "cpu").model)) == set()
    assert read_checkpoint_meta(out0)["weight_average"]["alpha"] == 0.0

    ft = tmp_path / "ft"
    train(_cfg(world, pairs, ft, epochs=1))
    res = cli("train", "average", ft, "--alpha", "0.25", "--out", tmp_path / "avg", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["base"] == "pcclip-micro"
    tuned, avg = _state(load_clip(str(ft), "cpu").model), _state(load_clip(str(tmp_path / "avg"), "cpu").model)
    name = "text_projection"
    assert torch.allclose(avg[name], 0.25 * tuned[name] + 0.75 * base[name], atol=1e-6)


def test_config_file_flags_override_and_resolved_copy(cli, world, pairs, tmp_path):
    run_toml = tmp_path / "run.toml"
    run_toml.write_text(f'model = "pcclip-micro"\ncomparatives = "{pairs}"\ncaptions = "{world / "captions.jsonl"}"\n'
                        'lr = 0.001\nepochs = 3\nbatch_size = 40\nseed = 9\n')
    out = tmp_path / "run"
    res = cli("train", "--config", run_toml, "--epochs", "1", "--out", out, "--json")
    assert res.code == 0, res.stderr
    assert res.json()["epochs"] == 1 and res.json()["steps"] == 4
    saved = (out / "config.toml").read_text()
    assert "epochs = 1" in saved and "batch_size = 40" in saved and "seed = 9" in saved
    # The saved copy reproduces the run's config.
    from pcclip_cli.training import read_config_file

    again = read_config_file(out / "config.toml")
    assert again["epochs"] == 1 and again["comparatives"] == str(pairs)

    bad = tmp_path / "bad.toml"
    bad.write_text("epochz = 3\n")
    res = cli("train", "--config", bad, "--out", tmp_path / "x")
    assert res.code == 1 and len(res.error_lines()) == 1
    assert "epochz" in res.stderr and "batch_size" in res.stderr and "rank_weights" in res.stderr


def test_pc_training_moves_difference_accuracy(shapes_clip, world, tmp_path):
    """The key effect, small and fast: oracle comparatives move the difference accuracy of the colour and size
    tasks up (scored on all 60 images: this checks learning, docs/training.md has the held-out numbers)."""
    pairs_path = tmp_path / "pairs.jsonl"
    oracle_comparatives(world, pairs_path, pairs=400, split=None, seed=2, where={"count": 1})
    tasks = {name: world / "tasks" / f"{name}.toml" for name in ("colour", "size")}
    before = {name: difference_accuracy(shapes_clip, task, split=None) for name, task in tasks.items()}
    out = tmp_path / "pc"
    train(TrainConfig(model="shapes-clip", comparatives=str(pairs_path), captions=str(world / "captions.jsonl"),
                      out=str(out), scope="both", lr=1e-3, temperature=0.1, epochs=8, batch_size=64))
    tuned = load_clip(str(out), "cpu")
    after = {name: difference_accuracy(tuned, task, split=None) for name, task in tasks.items()}
    for name in tasks:
        assert after[name] > before[name] + 0.2 and after[name] > 0.8, (name, before, after)


# ---- bad input: one `error:` line, exit 1 ----


def test_missing_image_ids_are_a_clean_error(run_pcclip, world, tmp_path):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"kind": "pairs", "first": "img_000001", "second": "nope_42", "text": "x"}) + "\n")
    res = run_pcclip("train", "--model", "pcclip-micro", "--comparatives", bad, "--captions",
                     world / "captions.jsonl", "--out", tmp_path / "run")
    assert_clean_error(res, "nope_42", "not in the captions file")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case", ["empty", "out_not_empty"])
def test_bad_inputs(cli, world, pairs, tmp_path, case):
    args = ["train", "--model", "pcclip-micro", "--comparatives", pairs, "--captions", world / "captions.jsonl",
            "--out", tmp_path / "run"]
    if case == "empty":
        args += ["--split", "validation"]
        expect = "no training pairs left"
    else:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "x").write_text("")
        expect = "not empty"
    res = cli(*args)
    assert res.code == 1 and len(res.error_lines()) == 1, res.stderr
    assert expect in res.error_lines()[0]


def test_resume_extends_a_run_and_refuses_a_different_model(cli, world, pairs, tmp_path):
    out = tmp_path / "run"
    first = train(_cfg(world, pairs, out, epochs=1))
    res = cli("train", "--resume", out, "--epochs", "2", "--json")
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["steps"] == 2 * first.steps and doc["resumed_from"].endswith("epoch-0001")
    assert read_checkpoint_meta(out)["training"]["epochs_done"] == 2
    res = cli("train", "--resume", out, "--lr", "0.5")
    assert res.code == 1 and "lr = 0.001" in res.error_lines()[0]
    res = cli("train", "--resume", out, "--model", "pcclip-tiny")
    assert res.code == 1 and "different model" in res.error_lines()[0]
    res = cli("train", "--resume", tmp_path / "nowhere")
    assert res.code == 1 and "no such run directory" in res.error_lines()[0]


def test_image_scope_refuses_models_without_separable_towers(cli, world, pairs, tmp_path):
    from pcclip_cli.clip.spec import open_clip_module

    cfg = {"embed_dim": 32, "custom_text": True,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16, "attentional_pool": True,
                          "attn_pooler_heads": 2, "output_tokens": True},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                        "embed_cls": True, "output_tokens": True},
           "multimodal_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                              "attn_pooler_heads": 2}}
    path = tmp_path / "test-tiny-coca.json"
    path.write_text(json.dumps(cfg))
    open_clip_module().add_model_config(path)
    res = cli("train", "--model", "test-tiny-coca", "--scope", "image", "--comparatives", pairs,
              "--captions", world / "captions.jsonl", "--out", tmp_path / "run")
    assert res.code == 1 and len(res.error_lines()) == 1, res.stderr
    assert "cannot" in res.stderr and "text_decoder" in res.stderr and "--scope both" in res.stderr


def test_config_validation_messages(world, pairs, tmp_path):
    with pytest.raises(PcclipError, match="needs comparatives"):
        TrainConfig(captions="c.jsonl", out="x")
    with pytest.raises(PcclipError, match="reference_params"):
        _cfg(world, pairs, tmp_path, scope="both", reference_params=True)
    with pytest.raises(PcclipError, match="weight_average"):
        _cfg(world, pairs, tmp_path, weight_average=1.5)
    with pytest.raises(PcclipError, match="objective pc only"):
        _cfg(world, pairs, tmp_path, objective="caption")
