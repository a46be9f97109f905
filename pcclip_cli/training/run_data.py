"""What a run's steps read, prepared once on the training device: index tensors, tokens, pixels or frozen
embeddings (the paper's efficiency trick: a frozen image tower never runs in the loop)."""

from __future__ import annotations

from dataclasses import dataclass

from pcclip_cli.core.errors import PcclipError

from .config import Objective, TrainConfig
from .distributed import Dist
from .order import add_order_rows
from .sanity import encode_texts, preprocess_all


@dataclass
class RunData:
    data: object  # pair_data's pairs (images, texts, counts)
    files: list[dict]  # the data files' entries for the run's records
    first: object  # (n,) long tensor: each example's first (or only) image
    second: object | None  # (n,) long tensor, or None for image-caption training
    tokens: object  # (n, context) token ids
    text_lengths: object | None  # each example's needed text length (CPU), or None: the tower is not trimmed
    image_emb: object | None = None  # frozen image tower: (images, d)
    pixels: object | None = None  # training image tower: (images, 3, H, W)
    text_emb: object | None = None  # frozen text tower: (n, d)
    batch_size: int = 0  # the batch the run uses: --batch-size capped at the data size
    partner: object | None = None  # (rows,) long tensor (CPU): the row joining each row's batch, -1 none (order.py)

    @property
    def n(self) -> int:
        """The examples sampled: rows past them (reversed pairs) only join batches as partners."""
        return getattr(self.data, "trainable", None) or len(self.data)


def check_batch(cfg: TrainConfig, n: int, world_size: int, warn=None) -> int:
    """The batch a run uses: the one asked for, capped at the data size with a warning (the asked value stays
    the run's recorded identity, so re-running the same command matches the run it made)."""
    batch = cfg.batch_size
    if batch > n:
        batch = n - n % world_size
        if warn:
            warn(f"--batch-size {cfg.batch_size} is larger than the {n} training examples; using batches of {batch}")
    if batch < max(2, world_size):
        raise PcclipError(f"only {n} training examples: a contrastive batch needs at least 2 (and one per "
                          "process); give more comparatives")
    if batch % world_size:
        raise PcclipError(f"--batch-size {cfg.batch_size} is the global batch and must divide evenly over "
                          f"{world_size} processes")
    return batch


def load_run_data(cfg: TrainConfig, clip, dist: Dist, *, image_frozen: bool, text_frozen: bool,
                  progress, warn=None) -> RunData:
    """Read the run's pairs, check the batch size against them (before any image is embedded), and put what the
    steps read on the model's device."""
    import torch

    from pcclip_cli.clip.embeddings import embed_images
    from pcclip_cli.clip.text_trim import needed_lengths, trim_kind

    from .pair_data import data_file_entry, read_caption_pairs, read_comparative_pairs

    device = clip.device
    if cfg.objective == Objective.pc:
        data = read_comparative_pairs(cfg.comparatives, cfg.captions, cfg.split, cfg.max_pairs, cfg.seed)
        data = add_order_rows(data, cfg.hard_negatives, cfg.reversal_pairs)
        first, second = torch.tensor(data.first), torch.tensor(data.second)
        files = [data_file_entry(cfg.comparatives, "comparatives"), data_file_entry(cfg.captions, "captions")]
    else:
        data = read_caption_pairs(cfg.captions, cfg.split)
        first, second = torch.arange(len(data.images)), None
        files = [data_file_entry(cfg.captions, "captions")]
    batch_size = check_batch(cfg, getattr(data, "trainable", None) or len(data), dist.world_size, warn)
    # Index tensors and tokens live on the training device, so a step moves nothing but its row indices.
    tokens = clip.tokenizer(data.texts).to(device)
    # Exact context trimming: each example's needed length, kept on the CPU so a step's context is known
    # without a device sync. None: the text tower is not trimmed (not exact for it, or --no-trim-text).
    lengths = needed_lengths(clip.model, tokens).cpu() if cfg.trim_text and trim_kind(clip.model) is not None else None
    out = RunData(data, files, first.to(device), second.to(device) if second is not None else None, tokens, lengths,
                  batch_size=batch_size)
    if getattr(data, "partner", None) is not None:
        out.partner = torch.tensor(data.partner)
    if image_frozen:
        # Rank 0 fills the shared embedding cache first so the other ranks only read it.
        if dist.main:
            emb = embed_images(clip, data.images, progress=lambda d, t: progress(d, t, stage="embedding images"))
        dist.barrier()
        if not dist.main:
            emb = embed_images(clip, data.images)
        out.image_emb = torch.from_numpy(emb.vectors).to(device)
    else:
        out.pixels = preprocess_all(clip.preprocess, data.images, progress).to(device)
    if text_frozen:
        out.text_emb = encode_texts(clip.model, clip.tokenizer, data.texts, device).to(device)
    return out
