"""Train only the token-embedding rows a run's texts use: the same result as training the whole table, for a
fraction of the step's cost when the table is most of the text tower (pcclip-tiny: 6.3M of its 7.6M weights).

Rows of tokens that never occur in the training texts get an exactly zero gradient at every step. With no
weight decay, Adam's moments for them stay 0 and so does their update (0 / (0 + eps)), so leaving them out of
the backward pass and the optimizer changes nothing but the time: no dense (vocabulary x width) gradient to
fill, no Adam pass over it. The trained rows live in a small parameter; after every optimizer step they are
written back into the model's table, so checkpoints, evaluation and weight averaging see the usual model.
"""

from __future__ import annotations

from pcclip_cli.clip.text_trim import CAUSAL, trim_kind


class CompactVocab:
    """The used rows of `table` (an nn.Parameter, vocabulary x width) as their own parameter `rows`."""

    def __init__(self, table, tokens):
        import torch

        self.table = table
        self.used = torch.unique(tokens).to(table.device)  # sorted: the map keeps token order
        self.remap = torch.full((table.shape[0],), -1, dtype=torch.long, device=table.device)
        self.remap[self.used] = torch.arange(len(self.used), device=table.device)
        self.rows = torch.nn.Parameter(table.detach()[self.used].clone())
        table.requires_grad_(False)

    def embed(self, tokens):
        import torch.nn.functional as F

        return F.embedding(self.remap[tokens], self.rows)

    def push(self):
        """Write the trained rows into the model's table."""
        import torch

        with torch.no_grad():
            self.table.index_copy_(0, self.used, self.rows)

    def pull(self):
        """Take the rows from the model's table (after a checkpoint was loaded into it)."""
        import torch

        with torch.no_grad():
            self.rows.copy_(self.table[self.used])

    def adopt_state(self, optimizer):
        """Optimizer state saved for the whole table (a run checkpointed before rows were compacted) becomes the
        state of the used rows; the others' moments are 0, so nothing is lost."""
        state = optimizer.state.get(self.rows, {})
        for name, value in list(state.items()):
            if hasattr(value, "shape") and value.dim() == 2 and value.shape[0] == self.table.shape[0]:
                state[name] = value[self.used.to(value.device)].clone()


def compact_vocab_for(model, trainable: list[str], weight_decay: float, tokens) -> CompactVocab | None:
    """A CompactVocab when it is exact and pcclip runs the text forward itself: the token table is trained,
    there is no weight decay (it would move unused rows), and the tower is open_clip's causal one."""
    if weight_decay != 0 or trim_kind(model) != CAUSAL:
        return None
    tower = model.text if hasattr(model, "text") else model
    name = "text.token_embedding.weight" if hasattr(model, "text") else "token_embedding.weight"
    if name not in trainable:
        return None
    return CompactVocab(tower.token_embedding.weight, tokens)
