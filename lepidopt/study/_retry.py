"""Running a trial again: failed, and enqueued with its parameters, as Optuna's heartbeat does for a dead
worker's trial; the retry resumes from the trial's last checkpoint."""

from __future__ import annotations

from typing import Any

from ._experimental import quietly

__all__ = ["retry_trial"]


def retry_trial(study: Any, number: int, *, retries: int) -> None:
    """Enqueue the failed trial ``number`` again with its parameters, unless it was retried ``retries`` times."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    quietly(RetryHeartbeatStaleTrialCallback, max_retry=retries)(study, frozen)
