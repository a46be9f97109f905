"""The image-embedding pass as a Ray Data job: map_batches with one CLIP model actor per worker, into shards.

One job covers every unfinished shard; its output streams back in input order (preserve_order), and each shard
is written (retrieval.shards.write_shard) as soon as its last image arrives, so a job killed midway keeps its
finished shards and the rerun embeds only the rest. Rows are keyed by (shard, position): a task Ray retries
after losing a worker can only rewrite the same row, never add a second one.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from pcclip_cli.core.errors import DataError, PcclipError
from pcclip_cli.data.records import OnError

CONNECT_TIMEOUT_S = 5.0


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise PcclipError("--engine ray needs Ray Data: pip install 'pcclip[ray]' (or 'ray[data]')") from None
    return ray


def _reachable(address: str) -> None:
    """Fail fast on an address nothing answers at (ray.init would retry for a minute or more)."""
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port or (10001 if address.startswith("ray://") else 6379)
    if not host:
        raise PcclipError(f"--ray-address {address!r} is not host:port or ray://host:port")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise PcclipError(f"cannot reach the Ray cluster at {address} ({exc.strerror or type(exc).__name__}); "
                          "start it with `ray start --head` or fix --ray-address") from None


def connect(address: str | None):
    """Join the cluster at `address`, or start a local Ray (PCCLIP_RAY_CPUS CPUs, default all)."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    if address:
        _reachable(address)
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise PcclipError(f"cannot join the Ray cluster at {address} ({str(exc).splitlines()[0][:160]})") from None
    else:
        cpus = os.environ.get("PCCLIP_RAY_CPUS")
        ray.init(num_cpus=int(cpus) if cpus else None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    return ray


class _Embedder:
    """One CLIP image tower per Ray worker, loaded once; embeds a batch of paths."""

    def __init__(self, spec: str, on_error: str, device: str | None = None):
        import torch

        from pcclip_cli.models import load_clip

        torch.set_num_threads(1)  # one worker per CPU: torch's own threads would fight each other
        self.clip = load_clip(spec, device)
        self.on_error = on_error

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        from pcclip_cli.data.records import open_image

        images, ok, reasons = [], [], []
        for p in batch["path"]:
            try:
                images.append(open_image(p))
                ok.append(True)
                reasons.append("")
            except DataError as exc:
                if self.on_error == OnError.stop.value:
                    raise
                ok.append(False)
                reasons.append(str(exc))
        dim = self.clip.embed_dim
        out = np.zeros((len(ok), dim), np.float32)
        if images:
            out[np.array(ok)] = np.asarray(self.clip.encode_image_batch(images), np.float32)
        return {"shard": batch["shard"], "pos": batch["pos"], "vector": out, "ok": np.array(ok),
                "reason": np.array(reasons, dtype=object)}


def embed_ray(spec: str, items, shards, shard_size: int, *, batch_size: int, on_error: OnError, embed_dim: int,
              workers: int | None = None, device: str | None = None, progress=None) -> dict:
    """Embed the unfinished shards' images on Ray Data; write each shard once all its images are back. Each
    worker loads the model on `device` (the driver's choice as given, resolved in the worker)."""
    import numpy as np

    from .shards import shard_rows_for, write_shard

    ray = _import_ray()
    todo = [s for s in shards if not s.done]
    if not todo:
        return {"embedded": 0, "skipped_bad": []}
    rows = [{"shard": s.index, "pos": j, "path": str(it.path)}
            for s in todo for j, it in enumerate(items[s.index * shard_size:(s.index + 1) * shard_size])]
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    workers = workers or max(1, int(ray.available_resources().get("CPU", 1)))
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows) // max(1, batch_size), 4 * workers)))
    ds = ds.map_batches(_Embedder, fn_constructor_kwargs={"spec": spec, "on_error": OnError(on_error).value,
                                                           "device": device},
                        batch_size=batch_size, num_cpus=1, concurrency=workers, batch_format="numpy")
    pending: dict[int, dict[int, tuple]] = {s.index: {} for s in todo}
    by_index = {s.index: s for s in todo}
    sizes = {s.index: len(items[s.index * shard_size:(s.index + 1) * shard_size]) for s in todo}
    embedded, bad, written = 0, [], 0
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for sh, pos, vec, ok, reason in zip(batch["shard"], batch["pos"], batch["vector"], batch["ok"],
                                                batch["reason"], strict=True):
                pending[int(sh)][int(pos)] = (vec, bool(ok), str(reason))
            for sh in [k for k, v in pending.items() if len(v) == sizes[k]]:
                got = pending.pop(sh)
                chunk = items[sh * shard_size:(sh + 1) * shard_size]
                keep = [j for j in range(sizes[sh]) if got[j][1]]
                bad += [{"path": str(chunk[j].path), "reason": got[j][2]} for j in range(sizes[sh]) if not got[j][1]]
                vectors = np.stack([got[j][0] for j in keep]) if keep else np.zeros((0, embed_dim), np.float32)
                write_shard(by_index[sh], vectors, shard_rows_for([chunk[j] for j in keep]))
                embedded += len(keep)
                written += 1
                if progress:
                    progress(len(shards) - len(todo) + written, len(shards), stage="embedding shards (ray)")
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), PcclipError) else None
        if cause is not None:
            raise cause from None
        raise PcclipError(f"the Ray embedding job failed: {str(exc).splitlines()[-1][:200]}; rerun to finish the "
                          "unfinished shards") from None
    return {"embedded": embedded, "skipped_bad": bad}
