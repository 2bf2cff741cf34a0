"""What a benchmark's figures depend on besides the code: the CPU and how many cores the process may use,
the library versions, the Keras backend, the thread pools of TensorFlow and of NumPy's BLAS, and the
settings that choose kernels. Every benchmark prints it first, so two runs on two machines can be told
apart before their figures are compared.

    .venv/bin/python benchmarks/environment.py
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

_PACKAGES = ("tensorflow", "keras", "optuna", "keras-tuner", "numpy", "scikit-learn", "umap-learn")
_SETTINGS = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "KERAS_BACKEND")


def _cpu() -> str:
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        model = platform.processor() or model
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model} ({', '.join(isa) or 'no AVX2'})"


def _cores() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = ""
    try:
        limit, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if limit != "max":
            quota = f", cgroup quota {int(limit) / int(period):g} cores"
    except (OSError, ValueError):
        pass
    return f"os.cpu_count() {os.cpu_count()}, usable by this process {usable}{quota}"


def _versions() -> str:
    found = []
    for name in _PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} -")
    return ", ".join(found)


def _tensorflow() -> str:
    """The Keras backend and TensorFlow's thread pools (0 = TensorFlow's default: one thread per core it
    sees), read after importing TensorFlow as lepidopt does."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    threads = tf.config.threading
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86 Linux builds)")
    return (f"keras backend {keras.backend.backend()}, tensorflow intra-op threads "
            f"{threads.get_intra_op_parallelism_threads()}, inter-op {threads.get_inter_op_parallelism_threads()}, "
            f"oneDNN {onednn}")


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl not installed"
    import numpy  # noqa: F401  (loads NumPy's BLAS so that threadpoolctl sees it)

    pools = [f"{p.get('internal_api')} {p.get('version')} kernel {p.get('architecture')} {p.get('num_threads')} "
             f"threads" for p in threadpool_info() if p.get("user_api") == "blas"]
    return "BLAS: " + ("; ".join(pools) or "none found")


def _speed() -> str:
    """Two quick probes of the machine's own speed, since a figure depends on them as much as on the code:
    plain Python (a head trial on cached features is mostly Python and dispatch) and a float32 matrix
    product through NumPy's BLAS (as arithmetic-bound work is)."""
    import time

    import numpy as np

    def best_of(runs: int, work) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return min(times)

    def python_loop() -> None:
        total = 0
        for i in range(1_000_000):
            total += i % 7
    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    python = 1.0 / best_of(3, python_loop)
    blas = 2 * 1024**3 / best_of(5, lambda: a @ a) / 1e9
    return f"speed: python {python:.1f} M loop steps/s, float32 matmul {blas:.0f} GFLOP/s"


def describe() -> list[str]:
    """The lines a benchmark prints before its figures."""
    set_here = [f"{k}={os.environ[k]}" for k in _SETTINGS if k in os.environ]
    return [
        f"machine: {_cpu()}; {_cores()}",
        f"python {platform.python_version()} on {platform.system()} {platform.release()}; {_versions()}",
        f"{_tensorflow()}; {_blas()}",
        _speed(),
        f"settings: {' '.join(set_here) or 'none of ' + ', '.join(_SETTINGS)}",
    ]


def print_environment() -> None:
    for line in describe():
        print(f"  {line}", flush=True)


if __name__ == "__main__":
    print_environment()
    sys.exit(0)
