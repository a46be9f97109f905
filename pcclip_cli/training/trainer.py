"""The training loop: one `Trainer` owns a run of a loaded model (steps, schedule, DDP, checkpoints, exact resume).

`Trainer(TrainConfig(...), from_architecture("pcclip-micro", "cpu")).fit()`: it receives a loaded model; loading one
by name (the registry) is finetune.train's job, a layer above.

A run directory holds `train_config.json` and `config.toml` (the resolved config), `metrics.jsonl`,
`checkpoints/epoch-NNNN/` (model, optimizer and RNG state, written atomically every `save_every` epochs) and,
when the run finishes, the final checkpoint itself (`model.safetensors` + `pcclip.json`), so `--model OUT` works.
Under `torchrun --nproc_per_node N` the same code runs data-parallel (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pcclip_cli import __version__
from pcclip_cli.clip.checkpoints import load_state_dict_safely, save_checkpoint
from pcclip_cli.clip.loaded import LoadedClip, image_tower_digest
from pcclip_cli.clip.spec import create_random_model
from pcclip_cli.clip.text_trim import trimmed_length
from pcclip_cli.core.config import to_dict
from pcclip_cli.core.dirs import build_dir
from pcclip_cli.core.errors import CheckpointError, PcclipError
from pcclip_cli.core.io import write_json_atomic, write_text_atomic

from .averaging import average_state_dicts
from .config import (
    Init,
    OptimizerKind,
    Precision,
    ScheduleKind,
    Scope,
    TrainConfig,
    config_to_toml,
)
from .distributed import Dist, gather_rows
from .losses import LossConfig, combined_loss, loss_shares
from .order import with_partners
from .reporters import open_metrics
from .run_data import load_run_data
from .run_dir import (
    CHECKPOINTS_DIR,
    CONFIG_JSON,
    CONFIG_TOML,
    METRICS_FILE,
    check_run_dir,
    latest_checkpoint,
    load_training_state,
    save_training_state,
    saved_config,
    trim_metrics,
)
from .sanity import SanityEval
from .step import StepInputs, make_step_module
from .towers import check_towers_separable, select_trainable
from .vocab import compact_vocab_for


@dataclass
class TrainResult:
    checkpoint: str
    metrics: dict
    epochs: int
    steps: int
    examples: int
    seconds: float
    resumed_from: str | None = None
    world_size: int = 1
    already_done: bool = False  # the same command had finished this run before: nothing was trained now

    def to_dict(self) -> dict:
        return asdict(self)


class TrainingError(PcclipError):
    """The run itself went wrong (a NaN/inf loss)."""


def lr_factor(cfg: TrainConfig, epoch: int, global_step: int, total_steps: int) -> float:
    """A pure function of the position in the run, so resuming needs only the counters."""
    warm = 1.0
    if cfg.warmup_steps and global_step < cfg.warmup_steps:
        warm = (global_step + 1) / cfg.warmup_steps
    if cfg.schedule == ScheduleKind.exponential:
        return warm * cfg.gamma**epoch
    if cfg.schedule == ScheduleKind.cosine:
        span = max(1, total_steps - cfg.warmup_steps)
        done = min(max(0, global_step - cfg.warmup_steps), span)
        return warm * 0.5 * (1 + math.cos(math.pi * done / span))
    return warm


class Trainer:
    """Owns one run of a loaded model (a private copy: it is trained in place). `prepare()` selects the
    parameters and loads the data, `fit()` trains, checkpoints and evaluates. `cfg.model` names the model for
    the run's records and for resume checks; the trainer never loads a model by name."""

    def __init__(self, cfg: TrainConfig, clip: LoadedClip, *, dist: Dist | None = None, resume: bool = False,
                 progress=None, warn=None, compact_vocab: bool = True):
        self.cfg, self.resume, self.clip = cfg, resume, clip
        self.compact_vocab = compact_vocab  # False only to measure what it saves (benchmarks/bench_train.py)
        self.out = check_run_dir(cfg.out, resume)
        self.dist = dist or Dist()
        self.progress = progress or (lambda *a, **k: None)
        self.warn = warn or (lambda message: None)
        self.prepared = False

    # ---- setup ------------------------------------------------------------------------------------------------
    def prepare(self) -> Trainer:
        import torch

        cfg, clip = self.cfg, self.clip
        self.device = clip.device
        self.cuda = self.device.startswith("cuda")
        bf16_asked = cfg.amp or cfg.precision == Precision.bf16
        if (bf16_asked or cfg.compile) and not self.cuda:
            self.warn("bf16 (--precision bf16 / --amp) and --compile apply on CUDA only; this CPU run stays fp32 "
                      "and uncompiled")
        self.precision = cfg.resolved_precision(self.cuda)
        if cfg.init == Init.random:
            self._random_init(clip)
            clip.fingerprint = f"{clip.arch}:random{cfg.seed}"
            clip.image_fingerprint = image_tower_digest(clip.model, clip.arch)
        self.model = clip.model
        # WiSE-FT averages with the starting weights: keep a CPU copy now, before training (or resume) moves them.
        self.base_state = ({k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
                           if cfg.weight_average is not None else None)
        self.base_fingerprint, self.base_image_fingerprint = clip.fingerprint, clip.image_fingerprint
        check_towers_separable(self.model, clip.arch, cfg.scope)
        self.trainable = select_trainable(self.model, cfg)
        self.image_frozen = cfg.scope == Scope.text
        self.text_frozen = cfg.scope == Scope.image
        self.rd = load_run_data(cfg, clip, self.dist, image_frozen=self.image_frozen, text_frozen=self.text_frozen,
                                progress=self.progress, warn=self.warn)
        self.n = self.rd.n
        table = None
        self.vocab = None
        if self.compact_vocab and not self.text_frozen:
            self.vocab = compact_vocab_for(self.model, self.trainable, cfg.weight_decay, self.rd.tokens)
            table = self.vocab.table if self.vocab else None
        # The compact rows take the table's place in the parameter order, so optimizer state indices keep theirs.
        params = [self.vocab.rows if p is table else p for p in self.model.parameters() if p.requires_grad
                  or p is table]
        self.params = params
        opt_cls = torch.optim.AdamW if cfg.optimizer == OptimizerKind.adamw else torch.optim.Adam
        try:
            # The fused kernel is ~8x faster than the per-tensor loop on CPU (it matters most when the whole
            # token-embedding table is trained: with weight decay; otherwise only its used rows are, vocab.py).
            self.optimizer = opt_cls(params, lr=cfg.resolved_lr, weight_decay=cfg.weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):
            self.optimizer = opt_cls(params, lr=cfg.resolved_lr, weight_decay=cfg.weight_decay)
        self.eval = SanityEval(cfg.eval_task, clip, cfg.eval_template) if cfg.eval_task else None
        self.step_module = make_step_module(StepInputs(
            model=self.model, first=self.rd.first, second=self.rd.second, tokens=self.rd.tokens,
            image_emb=self.rd.image_emb, pixels=self.rd.pixels, text_emb=self.rd.text_emb, vocab=self.vocab,
            learnable_scale=cfg.learnable_scale))
        self.runner = self.step_module
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.dist.local_rank] if self.cuda else None
            self.runner = DistributedDataParallel(self.step_module, device_ids=ids)
        if cfg.compile and self.cuda:
            self.runner = torch.compile(self.runner)
        self.prepared = True
        return self

    def _random_init(self, clip):
        clip.model.load_state_dict(create_random_model(clip.arch, self.cfg.seed).state_dict())

    # ---- the loop ---------------------------------------------------------------------------------------------
    def batches(self, epoch: int) -> list:
        """The epoch's batches of example indices: a seeded permutation, so data order needs no saved state.
        The last short batch is kept (trimmed to a multiple of the process count) when it has 2+ examples."""
        import torch

        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.n, generator=g)
        bs, ws = self.rd.batch_size, self.dist.world_size
        out = []
        for s in range(0, self.n, bs):
            chunk = perm[s : s + bs]
            chunk = chunk[: len(chunk) - len(chunk) % ws]
            if len(chunk) >= max(2, ws):
                out.append(chunk)
        return out

    def local_rows(self, batch):
        per = len(batch) // self.dist.world_size
        return batch[self.dist.rank * per : (self.dist.rank + 1) * per]

    def fit(self) -> TrainResult:
        if not self.prepared:
            self.prepare()
        cfg, dist_info = self.cfg, self.dist
        loss_cfg = cfg.loss_config()
        steps_per_epoch = len(self.batches(0))
        total_steps = steps_per_epoch * cfg.epochs
        start_epoch, global_step, resumed_from, last = 0, 0, None, {}
        if self.resume:
            start_epoch, global_step, resumed_from, last = self._restore()
        elif dist_info.main:
            self._write_run_files()
        dist_info.barrier()
        self.model.train()
        if self.image_frozen:
            self.model.visual.eval()
        metrics_fh = (open_metrics(self.out / METRICS_FILE, cfg.report_to, to_dict(cfg)) if dist_info.main
                      else None)
        t_start = time.perf_counter()
        try:
            for epoch in range(start_epoch, cfg.epochs):
                t_epoch, losses, seen, shares = time.perf_counter(), [], 0, []
                ramp = loss_cfg.ramp(epoch + 1, cfg.epochs)
                for step_in_epoch, batch in enumerate(self.batches(epoch)):
                    factor = lr_factor(cfg, epoch, global_step, total_steps)
                    for group in self.optimizer.param_groups:
                        group["lr"] = cfg.resolved_lr * factor
                    loss, parts = self._step(self.local_rows(batch), loss_cfg, global_step, epoch, step_in_epoch,
                                             ramp)
                    global_step += 1
                    losses.append(loss)
                    shares.append(loss_shares(parts, loss_cfg, ramp))
                    seen += len(batch)
                    rate = seen / max(time.perf_counter() - t_epoch, 1e-9)
                    self.progress(global_step, total_steps, stage="train", epoch=epoch + 1, loss=loss, ex_s=rate)
                    if metrics_fh and global_step % cfg.log_every == 0:
                        self._log(metrics_fh, {"event": "step", "epoch": epoch + 1, "step": global_step, "loss": loss,
                                               "lr": cfg.resolved_lr * factor, "parts": parts,
                                               "shares": shares[-1], "rank_ramp": ramp,
                                               "examples_per_s": round(rate, 2)})
                last = {"epoch": epoch + 1, "loss": sum(losses) / len(losses), "steps": global_step,
                        "seconds": round(time.perf_counter() - t_epoch, 3),
                        "examples_per_s": round(seen / max(time.perf_counter() - t_epoch, 1e-9), 2),
                        # Each loss term's mean share of the total over the epoch: swamping shows here.
                        "shares": {k: round(sum(s[k] for s in shares) / len(shares), 6) for k in shares[0]},
                        "rank_ramp": ramp}
                if self.eval is not None:
                    last["eval"] = self.eval.score(self.model, self.clip.tokenizer, self.device, self.image_frozen)
                if metrics_fh:
                    self._log(metrics_fh, {"event": "epoch", **last})
                if (epoch + 1) % cfg.save_every == 0 or epoch + 1 == cfg.epochs:
                    if dist_info.main:
                        self._save_epoch(epoch + 1, global_step, last)
                    dist_info.barrier()
        finally:
            if metrics_fh:
                metrics_fh.close()
        seconds = time.perf_counter() - t_start
        if dist_info.main:
            self._save_final(last, global_step, seconds)
        dist_info.barrier()
        return TrainResult(str(self.out), last, cfg.epochs, global_step, self.n, round(seconds, 3),
                           str(resumed_from) if resumed_from else None, dist_info.world_size)

    def _step(self, rows, loss_cfg: LossConfig, global_step: int, epoch: int, step_in_epoch: int,
              ramp: float = 1.0):
        import torch

        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.precision == Precision.bf16
                    else contextlib.nullcontext())
        with autocast:
            rows = with_partners(rows, self.rd.partner)  # order-aware training: reversed pairs join the batch
            x, y, scale = self.runner(rows.to(self.device), self.text_context(rows))
        ws = self.dist.world_size
        # The loss runs in fp32, outside autocast: log-sum-exps over a batch of logits lose too much in bf16.
        x, y = gather_rows(x.float(), self.dist), gather_rows(y.float(), self.dist)
        if scale is not None:
            scale = scale.float()
            if ws > 1:
                # Every rank computes the whole batch's loss; only 1/ws of the scale's gradient flows per rank,
                # so after the loss is scaled by ws and DDP averages, the gradient is the single-process one.
                scale = scale / ws + scale.detach() * (1 - 1 / ws)
        loss, parts = combined_loss(x, y, loss_cfg, scale, ramp)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(f"the loss became {value} at step {global_step + 1} (epoch {epoch + 1}, batch "
                                f"{step_in_epoch + 1}); lower --lr or check the data; nothing was skipped")
        self.optimizer.zero_grad(set_to_none=True)
        (loss * self.dist.world_size).backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.optimizer.step()
        if self.vocab is not None:
            self.vocab.push()
        if self.cfg.learnable_scale:
            with torch.no_grad():
                self.model.logit_scale.clamp_(0, math.log(100))
        return value, {k: round(float(v.detach()), 6) for k, v in parts.items()}

    def text_context(self, rows) -> int | None:
        """How many token positions this step's texts need (None: the full context). Rounded up to 8 on CUDA
        so tensor cores and torch.compile see few distinct shapes."""
        if self.rd.text_lengths is None or self.text_frozen:
            return None
        return trimmed_length(self.rd.text_lengths[rows.cpu()], self.rd.tokens.shape[1], 8 if self.cuda else 1)

    # ---- files ------------------------------------------------------------------------------------------------
    def _log(self, fh, record: dict):
        fh.write(json.dumps(record) + "\n")
        fh.flush()

    def _run_identity(self) -> dict:
        return {"config": to_dict(self.cfg), "base_fingerprint": self.base_fingerprint,
                "base_image_fingerprint": self.base_image_fingerprint, "arch": self.clip.arch,
                "data": self.rd.files, "pcclip_version": __version__}

    def _write_run_files(self):
        self.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.out / CONFIG_JSON, self._run_identity())
        write_text_atomic(self.out / CONFIG_TOML, config_to_toml(self.cfg))
        (self.out / METRICS_FILE).unlink(missing_ok=True)

    def _meta(self, metrics: dict, *, epoch: int, steps: int, complete: bool, seconds: float | None = None) -> dict:
        cfg = self.cfg
        base = cfg.model if cfg.init == Init.pretrained else f"{self.clip.arch} (random init, seed {cfg.seed})"
        return {
            "base": base,
            "scope": cfg.scope.value,
            "loss": cfg.loss.value,
            "objective": cfg.objective.value,
            "training": {**to_dict(cfg), "lr_resolved": cfg.resolved_lr, "epochs_done": epoch, "steps": steps,
                         "complete": complete, "world_size": self.dist.world_size, "examples": self.n,
                         "batch_size_used": self.rd.batch_size,
                         "data_counts": self.rd.data.counts, "trainable_parameters": len(self.trainable),
                         "base_fingerprint": self.base_fingerprint, "seconds": seconds},
            "data": self.rd.files,
            "metrics": metrics,
        }

    def _image_fp(self) -> str | None:
        return self.base_image_fingerprint if self.image_frozen else None

    def _save_epoch(self, epoch: int, steps: int, metrics: dict):
        root = self.out / CHECKPOINTS_DIR
        root.mkdir(parents=True, exist_ok=True)
        with build_dir(root / f"epoch-{epoch:04d}") as tmp:  # the checkpoint appears whole or not at all
            save_checkpoint(self.model, tmp, arch=self.clip.arch,
                            meta=self._meta(metrics, epoch=epoch, steps=steps, complete=False),
                            image_fingerprint=self._image_fp())
            save_training_state(tmp, self.optimizer, {"epoch": epoch, "global_step": steps,
                                                       "base_fingerprint": self.base_fingerprint,
                                                       "world_size": self.dist.world_size, "metrics": metrics})
        done = sorted(p for p in root.glob("epoch-*") if p.is_dir())
        for old in done[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    def _restore(self) -> tuple[int, int, Path | None, dict]:
        saved = saved_config(self.out)
        ident = json.loads((self.out / CONFIG_JSON).read_text(encoding="utf-8"))
        if ident.get("base_fingerprint") != self.base_fingerprint:
            raise CheckpointError(f"--resume {self.out}: the base model {self.cfg.model!r} is not the one that run "
                                  f"started from (fingerprint {ident.get('base_fingerprint')} vs "
                                  f"{self.base_fingerprint}); start a new run with another --out")
        if saved.get("model") != self.cfg.model:
            raise CheckpointError(f"--resume {self.out}: that run was trained from a different model "
                                  f"({saved.get('model')!r}, not {self.cfg.model!r})")
        ckpt = latest_checkpoint(self.out)
        if ckpt is None:
            self.warn(f"{self.out} has no complete epoch checkpoint yet; starting the run from the beginning")
            if self.dist.main:
                (self.out / METRICS_FILE).unlink(missing_ok=True)
            return 0, 0, None, {}
        state = load_state_dict_safely(ckpt)
        self.model.load_state_dict({k: v.to(self.device) for k, v in state.items()})
        train_state = load_training_state(ckpt, self.optimizer)
        if self.vocab is not None:
            self.vocab.pull()
            self.vocab.adopt_state(self.optimizer)
        if train_state.get("world_size", 1) != self.dist.world_size:
            self.warn(f"resuming a run started on {train_state.get('world_size')} process(es) on "
                      f"{self.dist.world_size}; the result will differ slightly from an uninterrupted run")
        epoch = int(train_state["epoch"])
        if self.dist.main:
            trim_metrics(self.out, epoch)
            for stale in (self.out / CHECKPOINTS_DIR).glob(".epoch-*"):  # a save cut short by the kill
                shutil.rmtree(stale, ignore_errors=True)
        return epoch, int(train_state["global_step"]), ckpt, train_state.get("metrics") or {}

    def _save_final(self, metrics: dict, steps: int, seconds: float):
        meta = self._meta(metrics, epoch=self.cfg.epochs, steps=steps, complete=True, seconds=round(seconds, 3))
        model = self.model
        if self.cfg.weight_average is not None:
            model = self._averaged_copy(self.cfg.weight_average)
            meta["weight_average"] = {"alpha": self.cfg.weight_average, "base": meta["base"],
                                      "finetuned": str(latest_checkpoint(self.out) or "")}
        save_checkpoint(model, self.out, arch=self.clip.arch, meta=meta, image_fingerprint=self._image_fp())

    def _averaged_copy(self, alpha: float):
        import copy

        averaged = copy.deepcopy(self.model).cpu()
        averaged.load_state_dict(average_state_dicts(self.base_state, averaged.state_dict(), alpha))
        return averaged
