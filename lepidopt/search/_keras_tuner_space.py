"""A space sampled by Keras Tuner's HyperParameters, define-by-run like the Optuna adapter: params in file
order, inactive ones never registered in that trial."""

from __future__ import annotations

from typing import Any

from ..spaces import Choice, IntRange, Space

__all__ = ["suggest_keras_tuner"]


def suggest_keras_tuner(hp, space: Space) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in space.params:
        if not p.is_active(values):
            continue
        if isinstance(p, Choice):
            values[p.name] = hp.Choice(p.name, list(p.values))
            continue
        sampling = "log" if p.log else "linear"
        if isinstance(p, IntRange):
            # Keras Tuner reads step as a multiplier under log sampling; our log ranges are plain integers
            values[p.name] = hp.Int(p.name, p.low, p.high, step=None if p.log else p.step, sampling=sampling)
        else:
            values[p.name] = hp.Float(p.name, p.low, p.high, step=p.step, sampling=sampling)
    return values
