"""Which trials count towards a study's total, the way ``--n-trials``, ``search``, ``worker`` and ``status``
all count them."""

from __future__ import annotations

from typing import Any

from . import _attrs as attrs

__all__ = ["count_finished", "count_claimed"]


def _finished_states() -> tuple:
    import optuna

    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def _counted(trials: list, states: tuple, *, before: int | None = None) -> list:
    """Trials in ``states`` (numbered below ``before``) that count towards the total: not a failed trial
    that was retried (its retry takes its place) and not a surplus trial (started by a worker after the
    total was claimed)."""
    retried = {n for t in trials for n in t.system_attrs.get(attrs.RETRY_HISTORY, ())}
    return [t for t in trials if t.state in states and t.number not in retried
            and not t.user_attrs.get(attrs.SURPLUS) and (before is None or t.number < before)]


def count_finished(study: Any) -> int:
    """Finished trials (complete, pruned or failed) towards the study's total."""
    return len(_counted(study.get_trials(deepcopy=False), _finished_states()))


def count_claimed(study: Any, *, before: int | None = None) -> int:
    """Finished and running trials towards the total (only those numbered below ``before``, if given)."""
    import optuna

    return len(_counted(study.get_trials(deepcopy=False), (*_finished_states(), optuna.trial.TrialState.RUNNING),
                        before=before))
