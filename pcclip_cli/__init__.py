"""pcclip: finetune CLIP to reason about pairwise differences (PC-CLIP). Nothing heavy is imported here."""

__version__ = "0.1.0"
