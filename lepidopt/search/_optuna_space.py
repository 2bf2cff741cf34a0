"""A space sampled by an Optuna trial, define-by-run: params in file order, inactive ones skipped."""

from __future__ import annotations

from typing import Any

from ..spaces import Choice, IntRange, Space

__all__ = ["suggest"]


def suggest(trial, space: Space) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in space.params:
        if not p.is_active(values):
            continue
        if isinstance(p, Choice):
            values[p.name] = trial.suggest_categorical(p.name, list(p.values))
        elif isinstance(p, IntRange):
            values[p.name] = trial.suggest_int(p.name, p.low, p.high, step=p.step, log=p.log)
        else:
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
    return values
