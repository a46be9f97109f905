"""Where pcclip keeps its caches and default artifacts (override with PCCLIP_HOME)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PROMPTS_DIR = PACKAGE_DIR / "prompts"
MODEL_CONFIGS_DIR = PACKAGE_DIR / "model_configs"


def home() -> Path:
    """The root of pcclip's cache: $PCCLIP_HOME, else $XDG_CACHE_HOME/pcclip, else ~/.cache/pcclip."""
    if os.environ.get("PCCLIP_HOME"):
        return Path(os.environ["PCCLIP_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pcclip"


def embeddings_dir() -> Path:
    return home() / "embeddings"


def models_dir() -> Path:
    """Checkpoints pcclip trains for itself (the shapes base model) and `pcclip models` lists."""
    return home() / "models"


def worlds_dir() -> Path:
    return home() / "worlds"
