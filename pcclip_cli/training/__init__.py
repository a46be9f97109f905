"""PC-CLIP training, one concern per module: config (settings and their defaults), towers (scope), losses,
pair_data (what a run reads), trainer (the loop, schedule, DDP), run_dir (run files and exact resume),
distributed, sanity (quick scores). Training a model by name lives one level up, in `pcclip_cli.finetune`."""

from .averaging import average_state_dicts
from .config import (
           IDENTITY_KEYS,
           PAPER_LR,
           Init,
           Objective,
           OptimizerKind,
           ScheduleKind,
           Scope,
           TrainConfig,
           read_config_file,
           resolve_config,
           resume_config,
)
from .losses import LossConfig, LossKind
from .run_dir import CONFIG_JSON, latest_checkpoint, run_info
from .sanity import difference_accuracy, zero_shot_scores
from .trainer import Trainer, TrainingError, TrainResult

__all__ = ["IDENTITY_KEYS", "PAPER_LR", "Init", "Objective", "OptimizerKind", "ScheduleKind", "Scope",
           "TrainConfig", "read_config_file", "resolve_config", "resume_config", "LossConfig", "LossKind",
           "CONFIG_JSON", "latest_checkpoint", "run_info", "difference_accuracy", "zero_shot_scores", "Trainer",
           "TrainingError", "TrainResult", "average_state_dicts"]
