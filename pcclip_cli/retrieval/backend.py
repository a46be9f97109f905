"""Loading faiss configured for shared CPUs, and choosing between its CPU and GPU paths."""

from __future__ import annotations

import contextlib
import functools
import os

from pcclip_cli.core.device import device_choice
from pcclip_cli.core.errors import PcclipError

# This faiss build's default, 128000, keeps query batches off BLAS. At 20 a flat batch of 100 queries over
# 100k x 512 is 3-10x faster with identical results, provided OpenMP threads do not spin (see import_faiss);
# benchmarks/bench_faiss.py measures both.
BLAS_THRESHOLD = 20


@functools.cache
def import_faiss():
    """faiss, configured: the BLAS threshold above, and OpenMP threads that sleep rather than spin when idle.

    Spinning OpenMP threads make a flat batch search ~10x slower when the cores are shared with other busy
    processes (benchmarks/bench_faiss.py measures it). The wait policy is read once, when the OpenMP runtime
    loads, so it takes effect only if faiss (or torch) has not been imported yet; a user's setting wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss

    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
    return faiss


def gpu_available(faiss_module=None) -> bool:
    """True when this faiss build has GPU support and sees a GPU; the CPU path is used otherwise."""
    faiss = faiss_module or import_faiss()
    if not hasattr(faiss, "StandardGpuResources") or not hasattr(faiss, "get_num_gpus"):
        return False
    try:
        return faiss.get_num_gpus() > 0
    except Exception:  # a GPU build without a usable driver raises from the C++ side
        return False


def choose_backend(use_gpu: bool | None = None, *, device: str | None = None) -> str:
    """'gpu' or 'cpu'. use_gpu=None follows the device choice (`device`, None: auto, see core.device; cpu forces
    the CPU path) and what this faiss build can do; True insists on the GPU, False keeps to the CPU."""
    if use_gpu is None:
        use_gpu = device_choice(device) != "cpu"
        return "gpu" if use_gpu and gpu_available() else "cpu"
    if use_gpu and not gpu_available():
        raise PcclipError("a faiss GPU index was asked for but this faiss build has no GPU support or sees no GPU; "
                          "install faiss-gpu-cu12 on a CUDA machine, or use the CPU path (--device cpu)")
    return "gpu" if use_gpu else "cpu"



@contextlib.contextmanager
def quiet_faiss_stdout():
    """faiss's C++ code prints notes (an on-disk index's file names, resizing) on stdout, which carries data;
    around such calls they are dropped (its errors still come as exceptions)."""
    import sys

    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (an embedding host): nothing to protect
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
