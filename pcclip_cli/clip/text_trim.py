"""Exact context trimming for the text tower: run a batch of tokens only as long as its longest text needs.

Texts are tokenised to the model's full context (77 for CLIP) and padded, yet most are far shorter. Where the
output provably does not depend on the padding, the forward runs on the batch cut to the longest position that
matters, and gives the same embeddings (to float rounding) for a fraction of the compute:

- `causal`: open_clip's own text transformer (`CLIP`, or `CustomTextCLIP` with a `TextTransformer`) with its
  causal mask and end-of-text pooling (`argmax` or `eos`). Position p only sees positions <= p, so cutting
  after the last pooled position changes nothing; the positional embedding and the causal mask are sliced and
  pooling reads the same position.
- `padded`: a Hugging Face encoder (`HFTextEncoder`) whose padding is masked out of attention (the mask is built
  from the tokens) and whose pooler is masked mean or the first token. Cutting columns that are padding in every
  row removes only masked keys.

Anything else (bidirectional open_clip towers without a pad mask, `last`/no pooling, CoCa's appended class
token, a max pooler, an unknown model) is left untrimmed: `trim_kind(model)` returns None and says why in
`untrimmed_reason(model)`.
"""

from __future__ import annotations

import weakref

CAUSAL, PADDED = "causal", "padded"
_POOLS = ("argmax", "eos")
_HF_POOLERS = ("MeanPooler", "ClsPooler", "ClsLastHiddenStatePooler")
_KINDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _is_causal_mask(mask) -> bool:
    import torch

    if mask is None or mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        return False
    expected = torch.full(mask.shape, float("-inf"), device=mask.device).triu(1)
    return bool(torch.equal(mask.float(), expected))


def _text_transformer(model):
    """The open_clip TextTransformer behind a CustomTextCLIP, or None."""
    text = getattr(model, "text", None)
    return text if type(text).__name__ == "TextTransformer" else None


def untrimmed_reason(model) -> str | None:
    """Why `model`'s text forward is not trimmed (None: it is)."""
    import open_clip

    kind = type(model)
    if kind is open_clip.CLIP:
        if not _is_causal_mask(getattr(model, "attn_mask", None)):
            return "its text transformer is not causal"
        if getattr(model, "text_pool_type", None) not in _POOLS:
            return f"it pools with {getattr(model, 'text_pool_type', None)!r}, not at the end-of-text token"
        return None
    if kind is open_clip.CustomTextCLIP:
        text = model.text
        tt = _text_transformer(model)
        if tt is not None:
            if tt.cls_emb is not None:
                return "its text transformer appends a class token"
            if getattr(tt, "output_tokens", False):
                return "its text transformer returns tokens"
            if not _is_causal_mask(tt.attn_mask):
                return "its text transformer is not causal"
            if tt.pool_type not in _POOLS:
                return f"it pools with {tt.pool_type!r}, not at the end-of-text token"
            return None
        if type(text).__name__ == "HFTextEncoder":
            pooler = type(text.pooler).__name__
            if pooler not in _HF_POOLERS:
                return f"its Hugging Face text tower pools with {pooler}"
            if getattr(text, "output_tokens", False):
                return "its text tower returns tokens"
            if getattr(text.config, "pad_token_id", None) is None:
                return "its Hugging Face text tower has no pad token"
            if getattr(text.config, "is_decoder", False):
                return "its Hugging Face text tower is a decoder"
            return None
        return f"its text tower is a {type(text).__name__}"
    return f"it is a {kind.__name__}, not an open_clip CLIP or CustomTextCLIP"


def trim_kind(model) -> str | None:
    """`causal`, `padded`, or None (not trimmed, see untrimmed_reason). Remembered per model: the check reads
    the mask, which on CUDA would cost a device sync every step."""
    if model in _KINDS:
        return _KINDS[model]
    kind = None
    if untrimmed_reason(model) is None:
        kind = PADDED if _text_transformer(model) is None and hasattr(model, "text") else CAUSAL
    _KINDS[model] = kind
    return kind


def needed_lengths(model, tokens, kind: str | None = None):
    """Per row, how many leading positions the embedding depends on (a LongTensor on the tokens' device)."""
    import torch

    kind = kind or trim_kind(model)
    if kind == CAUSAL:
        tt = _text_transformer(model)
        pool = tt.pool_type if tt is not None else model.text_pool_type
        eos = tt.eos_id if tt is not None else getattr(model, "text_eos_id", None)
        idx = (tokens == eos).int().argmax(dim=-1) if pool == "eos" else tokens.argmax(dim=-1)
        return idx + 1
    if kind == PADDED:
        real = tokens != model.text.config.pad_token_id
        positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device)
        return (real * positions).amax(dim=-1).clamp(min=1)
    return torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long, device=tokens.device)


def trimmed_length(lengths, full: int, multiple: int = 1) -> int:
    """The batch's context: its longest needed length, rounded up to `multiple` (fewer distinct shapes for
    compiled or tensor-core kernels), never beyond the full context."""
    longest = int(lengths.max()) if len(lengths) else full
    return min(full, -(-longest // multiple) * multiple)


def _causal_forward(tokens, length: int, *, embedding, positional, transformer, mask, ln_final, pool, eos_id,
                    projection):
    """open_clip's causal text forward (CLIP.encode_text / TextTransformer.forward) on the first `length`
    positions: the positional embedding and the causal mask sliced, pooling at the same position."""
    from open_clip.transformer import text_global_pool
    from torch import nn

    tokens = tokens[:, :length]
    cast = transformer.get_cast_dtype()
    x = embedding(tokens).to(cast) + positional[:length].to(cast)
    x = transformer(x, attn_mask=mask[:length, :length])
    x = ln_final(x)
    x = text_global_pool(x, tokens, pool, eos_token_id=eos_id)
    if projection is not None:
        x = projection(x) if isinstance(projection, nn.Linear) else x @ projection
    return x


def encode_text(model, tokens, *, trim: bool = True, context: int | None = None, multiple: int = 1,
                normalize: bool = False, embedding=None):
    """`model.encode_text(tokens)`, run on the batch cut to the context it needs when that is exact.

    `context` (from `trimmed_length` over lengths kept on the CPU) saves measuring the batch, and with it a
    device sync on CUDA; it must be at least the batch's longest needed length. `embedding` replaces the token
    embedding lookup (causal towers only; the trainer's compact vocabulary)."""
    import torch.nn.functional as F

    kind = trim_kind(model) if trim else None
    if kind is None:
        return model.encode_text(tokens, normalize=normalize)
    length = context or trimmed_length(needed_lengths(model, tokens, kind), tokens.shape[1], multiple)
    if kind == PADDED:
        x = model.encode_text(tokens[:, :length])
    else:
        tt = _text_transformer(model)
        src = tt if tt is not None else model
        x = _causal_forward(tokens, length, embedding=embedding or src.token_embedding, positional=src.positional_embedding,
                            transformer=src.transformer, mask=src.attn_mask, ln_final=src.ln_final,
                            pool=tt.pool_type if tt is not None else model.text_pool_type,
                            eos_id=tt.eos_id if tt is not None else getattr(model, "text_eos_id", None),
                            projection=src.text_projection)
    return F.normalize(x, dim=-1) if normalize else x
