"""`train --report-to tensorboard,wandb`: the scalars of each metrics.jsonl record, also sent to TensorBoard / W&B.

The trainer writes metrics.jsonl through `open_metrics`, which returns a file-like sink: every record written
to the file is also flattened into scalars (`train/loss`, `train/parts/pc`, `epoch/eval/accuracy`, ...) at
the record's global step, so the reporters can never show numbers the jsonl does not hold.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

from pcclip_cli.core.errors import PcclipError

REPORTERS = ("tensorboard", "wandb")
TENSORBOARD_DIR = "tensorboard"


def parse_report_to(value: str | None) -> list[str]:
    names = [v.strip().lower() for v in (value or "").split(",") if v.strip() and v.strip().lower() != "none"]
    bad = [n for n in names if n not in REPORTERS]
    if bad:
        raise PcclipError(f"--report-to {bad[0]!r} is not one of {', '.join(REPORTERS)} (comma-separated)")
    return names


def scalars(record: dict) -> tuple[int | None, dict[str, float]]:
    """A metrics.jsonl record's global step and its numbers, nested keys joined with '/'."""
    event = record.get("event")
    prefix = "train" if event == "step" else event or "metrics"
    step = record.get("step") if event == "step" else record.get("steps", record.get("step"))
    out: dict[str, float] = {}

    def walk(key: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{key}/{k}", v)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[key] = float(value)

    for k, v in record.items():
        if k not in ("event", "step", "steps", "epoch"):
            walk(f"{prefix}/{k}", v)
    return (int(step) if step is not None else None), out


class _TensorBoard:
    def __init__(self, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise PcclipError("--report-to tensorboard needs the tensorboard package: pip install 'pcclip[scale]' "
                              "(or tensorboard)") from None
        self.writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))

    def log(self, step, values):
        for k, v in values.items():
            self.writer.add_scalar(k, v, global_step=step)

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


class _WandB:
    def __init__(self, run_dir: Path, config: dict | None):
        try:
            import wandb
        except ImportError:
            raise PcclipError("--report-to wandb needs wandb: pip install wandb (and `wandb login`, or "
                              "WANDB_MODE=offline)") from None
        self.wandb = wandb
        self.run = wandb.init(project="pcclip", dir=str(run_dir), config=config or {}, name=run_dir.name)

    def log(self, step, values):
        self.run.log(values, step=step)

    def flush(self):
        pass

    def close(self):
        self.run.finish()


class MetricsSink:
    """metrics.jsonl's file handle, teeing each record to the reporters."""

    def __init__(self, fh, reporters: list):
        self.fh, self.reporters, self._buf = fh, reporters, ""

    def write(self, text: str) -> int:
        n = self.fh.write(text)
        self._buf += text
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            if line.strip():
                step, values = scalars(json.loads(line))
                for r in self.reporters:
                    r.log(step, values)
        return n

    def flush(self) -> None:
        self.fh.flush()
        for r in self.reporters:
            r.flush()

    def close(self) -> None:
        self.fh.close()
        for r in self.reporters:
            r.close()


def open_metrics(path: Path, report_to: str | None, config: dict | None = None):
    """metrics.jsonl opened for appending, wrapped with the reporters `report_to` names (none: the bare file)."""
    names = parse_report_to(report_to)
    path = Path(path)
    reporters = [_TensorBoard(path.parent) if n == "tensorboard" else _WandB(path.parent, config) for n in names]
    fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by the sink's close()
    return MetricsSink(fh, reporters) if reporters else fh
