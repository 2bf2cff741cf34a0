"""A space sampled by an Optuna trial, define-by-run: params in file order, inactive ones skipped; and the
Optuna distributions of a trial's parameters, for trials another engine ran."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..spaces import Choice, IntRange, Space

if TYPE_CHECKING:
    import optuna

__all__ = ["suggest", "distributions"]


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
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


def distributions(space: Space, params: dict[str, Any]) -> dict[str, Any]:
    """The distribution ``suggest`` would have used for each of ``params``."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for p in space.params:
        if p.name not in params:
            continue
        if isinstance(p, Choice):
            out[p.name] = CategoricalDistribution(list(p.values))
        elif isinstance(p, IntRange):
            out[p.name] = IntDistribution(p.low, p.high, step=p.step, log=p.log)
        else:
            out[p.name] = FloatDistribution(p.low, p.high, step=p.step, log=p.log)
    return out
