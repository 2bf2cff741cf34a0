"""What every engine records about a trial, so that status, export and report read both engines' trials
with the same code."""

from __future__ import annotations

import os
import socket
from typing import Any

from ..recipe import Recipe

__all__ = ["identity_attrs", "outcome_attrs"]


def identity_attrs(recipe: Recipe, *, seed: int, root: int) -> dict[str, Any]:
    """The recipe as trained, its seed, the trial whose seed and checkpoints it uses, the worker running it."""
    return {"lepidopt:root": root, "recipe": recipe.to_flat(), "seed": seed,
            "worker": {"host": socket.gethostname(), "pid": os.getpid()}}


def outcome_attrs(*, history: list[dict], timings: dict[str, float], metrics: dict[str, float] | None = None,
                  n_train: int | None = None) -> dict[str, Any]:
    """Per-epoch history, seconds per stage and resident memory after a trial; metrics and training-set size
    when it finished."""
    import psutil

    attrs: dict[str, Any] = {"history": history, "timings": {k: round(v, 4) for k, v in timings.items()}}
    if metrics is not None:
        attrs["metrics"] = metrics
    if n_train is not None:
        attrs["n_train"] = n_train
    attrs["rss_mb"] = round(psutil.Process().memory_info().rss / 2**20)
    return attrs
