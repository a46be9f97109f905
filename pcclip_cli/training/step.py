"""The per-step forward of a training run, as an nn.Module so DistributedDataParallel can own it."""

from __future__ import annotations


def make_step_module(trainer):
    """The per-step forward as an nn.Module, so DDP can own it: (rows, text context) -> (image side X, text
    side Y, logit scale or None). The class is defined here because torch is imported lazily."""
    import torch

    from pcclip_cli.clip.text_trim import encode_text

    class StepModule(torch.nn.Module):
        def __init__(self, tr):
            super().__init__()
            self.model = tr.model
            self.tr = (tr,)  # a tuple keeps the trainer out of the module tree
            if tr.vocab is not None:
                self.vocab_rows = tr.vocab.rows  # registered, so DDP averages its gradient

        def forward(self, rows, context: int | None = None):
            tr = self.tr[0]
            model = self.model
            first = tr.first[rows]
            if tr.image_frozen:
                g1 = tr.image_emb[first]
                g2 = tr.image_emb[tr.second[rows]] if tr.second is not None else None
            else:
                if tr.second is not None:
                    second = tr.second[rows]
                    both = torch.cat([first, second])
                    uniq, inverse = torch.unique(both, return_inverse=True)
                    g = model.encode_image(tr.pixels[uniq], normalize=True)[inverse]
                    g1, g2 = g[: len(rows)], g[len(rows) :]
                else:
                    g1, g2 = model.encode_image(tr.pixels[first], normalize=True), None
            x = g1 - g2 if g2 is not None else g1
            if tr.text_frozen:
                y = tr.text_emb[rows]
            else:
                tokens = tr.tokens[rows]
                if tr.vocab is not None:
                    y = encode_text(model, tokens, context=context or tokens.shape[1], embedding=tr.vocab.embed)
                else:
                    y = encode_text(model, tokens, context=context) if context else model.encode_text(tokens)
            scale = model.logit_scale.exp() if tr.cfg.learnable_scale else None
            return x, y, scale

    return StepModule(trainer)
