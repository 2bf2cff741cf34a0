"""Every key lepidopt writes into a study and its trials, in one place, and what every engine records about
a trial, so that status, export and report read both engines' trials with the same code."""

from __future__ import annotations

import os
import socket
from typing import Any

from ..recipe import Recipe

__all__ = ["RUN", "ENGINE", "TOTAL", "OBJECTIVE", "ARTIFACTS", "BASELINE", "ROOT", "RECIPE", "SEED", "WORKER",
           "FAIL_REASON", "STOP_REASON", "STAGE", "PARENT", "RESUMED_FROM", "SURPLUS", "PROMOTED_TWICE", "HISTORY",
           "TIMINGS", "METRICS", "N_TRAIN", "RSS_MB", "IMPORTED_FROM", "KERAS_TUNER_TRIAL_ID", "KERAS_TUNER_EPOCHS",
           "RETRY_HISTORY", "HEARTBEAT", "identity_attrs", "outcome_attrs", "root_of"]

# The study's user attributes.
RUN = "lepidopt:run"  # the run as recorded (Run.to_dict() and the folder on the creating machine)
ENGINE = "lepidopt:engine"  # the engine, as status shows it
TOTAL = "lepidopt:n_trials"  # the total of finished trials asked for, which workers run up to
OBJECTIVE = "lepidopt:objective"
ARTIFACTS = "lepidopt:artifacts"  # the report's files, for optuna-dashboard

# A trial's user attributes.
BASELINE = "lepidopt:baseline"  # the space's baseline recipe, enqueued first
ROOT = "lepidopt:root"  # the trial whose seed and checkpoints this one uses (itself, or the one it retries)
RECIPE = "recipe"  # the recipe as trained, flat
SEED = "seed"
WORKER = "worker"  # {"host", "pid"} of the process that ran it
FAIL_REASON = "fail_reason"
STOP_REASON = "stop_reason"  # why a trial that completed ended before its last epoch (fine-tuning diverged)
STAGE = "lepidopt:stage"  # 1 or 2 in a staged study: a head on cached features, or its fine-tuning
PARENT = "lepidopt:parent"  # the stage-one trial whose trained head a stage-two trial fine-tunes
RESUMED_FROM = "resumed_from"  # the checkpoint position it went on from
SURPLUS = "lepidopt:surplus"  # not run and not counted: True when the study's total was claimed, else why
PROMOTED_TWICE = "another worker promoted the same head"  # a staged study's SURPLUS
HISTORY = "history"
TIMINGS = "timings"
METRICS = "metrics"
N_TRAIN = "n_train"
RSS_MB = "rss_mb"
IMPORTED_FROM = "lepidopt:imported_from"  # the engine that ran a trial Optuna did not
KERAS_TUNER_TRIAL_ID = "keras_tuner:trial_id"
KERAS_TUNER_EPOCHS = "keras_tuner:epochs"  # the epochs Hyperband gave the trial

# A trial's system attribute: its worker's last heartbeat, [trial id, time.time()], on a storage without Optuna's
# own heartbeat table (the gRPC proxy).
HEARTBEAT = "lepidopt:heartbeat"

# Optuna's own system attribute: the numbers of the runs a retried trial follows, the one it retries last.
RETRY_HISTORY = "retry_history"


def root_of(trial: Any) -> int:
    """The first trial of the frozen ``trial``'s retry chain, whose seed and checkpoint folder the chain uses: as the
    trial recorded it, else as Optuna's retry history has it (a first run killed before it recorded its root)."""
    root = trial.user_attrs.get(ROOT)
    if root is None:
        history = trial.system_attrs.get(RETRY_HISTORY)
        root = history[0] if history else trial.number
    return int(root)


def identity_attrs(recipe: Recipe, *, seed: int, root: int) -> dict[str, Any]:
    """The recipe as trained, its seed, the trial whose seed and checkpoints it uses, the worker running it."""
    return {ROOT: root, RECIPE: recipe.to_flat(), SEED: seed,
            WORKER: {"host": socket.gethostname(), "pid": os.getpid()}}


def outcome_attrs(*, history: list[dict], timings: dict[str, float], metrics: dict[str, float] | None = None,
                  n_train: int | None = None, stop_reason: str | None = None) -> dict[str, Any]:
    """Per-epoch history, seconds per stage and resident memory after a trial; metrics and training-set size
    when it finished, and why it ended early when it did."""
    import psutil

    attrs: dict[str, Any] = {HISTORY: history, TIMINGS: {k: round(v, 4) for k, v in timings.items()}}
    if metrics is not None:
        attrs[METRICS] = metrics
    if n_train is not None:
        attrs[N_TRAIN] = n_train
    if stop_reason is not None:
        attrs[STOP_REASON] = stop_reason
    attrs[RSS_MB] = round(psutil.Process().memory_info().rss / 2**20)
    return attrs
