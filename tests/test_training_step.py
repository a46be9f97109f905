"""The training step alone: built from a StepInputs (no Trainer), on a real tiny open_clip model and real pixels."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pcclip_cli.training.step import StepInputs, make_step_module  # noqa: E402


@pytest.fixture(scope="module")
def micro():
    from pcclip_cli.models import load_clip

    return load_clip("pcclip-micro", "cpu", fresh=True)


def _pixels(clip, n: int):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)) for _ in range(n)]
    return torch.stack([clip.preprocess(im) for im in images])


def _unit(t):
    return t / t.norm(dim=-1, keepdim=True)


def test_pairwise_step_gives_image_differences_and_text_embeddings(micro):
    pixels = _pixels(micro, 4)
    tokens = micro.tokenizer(["the first is larger", "the first is bluer", "the first has more circles"])
    first, second = torch.tensor([0, 1, 2]), torch.tensor([3, 3, 0])
    step = make_step_module(StepInputs(model=micro.model, first=first, second=second, tokens=tokens,
                                       pixels=pixels, learnable_scale=True))
    rows = torch.tensor([2, 0])
    with torch.no_grad():
        x, y, scale = step(rows)
        images = micro.model.encode_image(pixels, normalize=True)
        texts = micro.model.encode_text(tokens)
    assert x.shape == (2, images.shape[1]) and y.shape == (2, texts.shape[1])
    # X is the difference of the rows' normalised image embeddings, in row order; Y their texts' embeddings.
    torch.testing.assert_close(x, images[[2, 0]] - images[[0, 3]], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(y, texts[[2, 0]], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scale, micro.model.logit_scale.exp())
    # Gradients reach the model's parameters, through the registered module tree only.
    x, y, _ = step(rows)
    (x * y[:, : x.shape[1]]).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in micro.model.visual.parameters())
    assert not any(k.startswith("inputs") for k in step.state_dict())
    micro.model.zero_grad(set_to_none=True)


def test_frozen_towers_read_precomputed_embeddings(micro):
    d = 8
    image_emb, text_emb = _unit(torch.randn(5, d)), _unit(torch.randn(3, d))
    first, second = torch.tensor([4, 1, 2]), torch.tensor([0, 3, 3])
    step = make_step_module(StepInputs(model=micro.model, first=first, second=second, tokens=None,
                                       image_emb=image_emb, text_emb=text_emb))
    x, y, scale = step(torch.tensor([1, 0]))
    torch.testing.assert_close(x, image_emb[[1, 4]] - image_emb[[3, 0]])
    torch.testing.assert_close(y, text_emb[[1, 0]])
    assert scale is None
    # Image-caption training (no second image): X is the image embedding itself.
    single = make_step_module(StepInputs(model=micro.model, first=first, second=None, tokens=None,
                                         image_emb=image_emb, text_emb=text_emb))
    torch.testing.assert_close(single(torch.tensor([2]))[0], image_emb[[2]])


def test_step_refuses_inputs_without_an_image_side(micro):
    with pytest.raises(ValueError, match="image_emb"):
        make_step_module(StepInputs(model=micro.model, first=torch.tensor([0]), second=None,
                                    tokens=torch.zeros(1, 4, dtype=torch.long)))
