"""The per-step forward of a training run, as an nn.Module so DistributedDataParallel can own it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepInputs:
    """Everything one training step reads, prepared once per run (tensors already on the training device).

    `first`/`second` index a row's images (second is None for image-caption training); the image side is read
    from `image_emb` when the image tower is frozen, else encoded from `pixels`; the text side is `text_emb`
    when the text tower is frozen, else `tokens` encoded (through `vocab`'s compact rows when given).
    """

    model: object  # the open_clip model being trained
    first: object  # (n,) long tensor: each row's first (or only) image
    second: object | None  # (n,) long tensor, or None
    tokens: object  # (n, context) token ids
    image_emb: object | None = None  # (images, d) frozen image embeddings (image tower frozen)
    pixels: object | None = None  # (images, 3, H, W) preprocessed images (image tower trains)
    text_emb: object | None = None  # (n, d) frozen text embeddings (text tower frozen)
    vocab: object | None = None  # training/vocab.py's compact token-embedding rows, or None
    learnable_scale: bool = False  # return the model's logit scale for the loss

    @property
    def image_frozen(self) -> bool:
        return self.image_emb is not None

    @property
    def text_frozen(self) -> bool:
        return self.text_emb is not None


def make_step_module(inputs: StepInputs):
    """The per-step forward as an nn.Module, so DDP can own it: (rows, text context) -> (image side X, text
    side Y, logit scale or None). The class is defined here because torch is imported lazily."""
    import torch

    from pcclip_cli.clip.text_trim import encode_text

    if inputs.image_emb is None and inputs.pixels is None:
        raise ValueError("StepInputs needs image_emb (image tower frozen) or pixels")
    if inputs.text_emb is None and inputs.tokens is None:
        raise ValueError("StepInputs needs text_emb (text tower frozen) or tokens")

    class StepModule(torch.nn.Module):
        def __init__(self, inp: StepInputs):
            super().__init__()
            self.model = inp.model
            self.inputs = (inp,)  # a tuple keeps the tensors out of the module tree (no state dict entries)
            if inp.vocab is not None:
                self.vocab_rows = inp.vocab.rows  # registered, so DDP averages its gradient

        def forward(self, rows, context: int | None = None):
            inp = self.inputs[0]
            model = self.model
            first = inp.first[rows]
            if inp.image_frozen:
                g1 = inp.image_emb[first]
                g2 = inp.image_emb[inp.second[rows]] if inp.second is not None else None
            else:
                if inp.second is not None:
                    second = inp.second[rows]
                    both = torch.cat([first, second])
                    uniq, inverse = torch.unique(both, return_inverse=True)
                    g = model.encode_image(inp.pixels[uniq], normalize=True)[inverse]
                    g1, g2 = g[: len(rows)], g[len(rows) :]
                else:
                    g1, g2 = model.encode_image(inp.pixels[first], normalize=True), None
            x = g1 - g2 if g2 is not None else g1
            if inp.text_frozen:
                y = inp.text_emb[rows]
            else:
                tokens = inp.tokens[rows]
                if inp.vocab is not None:
                    y = encode_text(model, tokens, context=context or tokens.shape[1], embedding=inp.vocab.embed)
                else:
                    y = encode_text(model, tokens, context=context) if context else model.encode_text(tokens)
            scale = model.logit_scale.exp() if inp.learnable_scale else None
            return x, y, scale

    return StepModule(inputs)
