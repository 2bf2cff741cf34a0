"""A space as Keras Tuner HyperParameters: declared whole before the search (``when`` conditions become
conditional scopes, the baseline becomes the defaults), or sampled define-by-run like the Optuna adapter."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ..errors import SpaceError, option
from ..spaces import Choice, IntRange, Param, Space

if TYPE_CHECKING:
    import keras_tuner

__all__ = ["keras_tuner_space", "check_keras_tuner_space", "active_params", "suggest_keras_tuner"]


def check_keras_tuner_space(space: Space) -> None:
    """Raise SpaceError for what Keras Tuner cannot express, before any trial trains: a Choice of values of
    different types (ints among floats excepted, declared as floats). The recipe's keys make this
    unreachable for the spaces lepidopt accepts today; the check keeps it so if a key ever allows more."""
    for p in space.params:
        if isinstance(p, Choice) and len({type(v) for v in _choice_values(p)}) > 1:
            raise SpaceError(
                f"space {space.name!r}, params.{p.name}.choice",
                f"Keras Tuner's Choice needs values of one type, got {list(p.values)!r}.",
                fix=f"Make them all strings, all numbers or all booleans, or use {option('engine', 'optuna')}.")


def _choice_values(p: Choice) -> list[Any]:
    """The values as Keras Tuner's Choice takes them: [0, 0.25] (an int and a float) as [0.0, 0.25]."""
    numbers = [v for v in p.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) == len(p.values) and any(isinstance(v, float) for v in numbers):
        return [float(v) for v in numbers]
    return list(p.values)


def keras_tuner_space(space: Space) -> keras_tuner.HyperParameters:
    """The whole space as ``keras_tuner.HyperParameters``, every conditional parameter inside the scopes of
    its ``when`` parents."""
    import keras_tuner

    check_keras_tuner_space(space)
    hp = keras_tuner.HyperParameters()
    baseline = dict(space.baseline or {})
    for p in space.params:
        with contextlib.ExitStack() as scopes:
            for parent, allowed in p.when:
                scopes.enter_context(hp.conditional_scope(parent, list(allowed)))
            _declare(hp, p, default=baseline.get(p.name))
    return hp


def active_params(space: Space, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``values`` that are active, in file order, as the engines' samplers see them."""
    active: dict[str, Any] = {}
    for p in space.params:
        if p.is_active(active):
            active[p.name] = values[p.name]
    return active


def suggest_keras_tuner(hp: keras_tuner.HyperParameters, space: Space) -> dict[str, Any]:
    """Define-by-run, for a plain Keras Tuner hypermodel: params in file order, inactive ones never registered."""
    values: dict[str, Any] = {}
    for p in space.params:
        if p.is_active(values):
            values[p.name] = _declare(hp, p, default=None)
    return values


def _declare(hp: keras_tuner.HyperParameters, p: Param, *, default: Any) -> Any:
    if isinstance(p, Choice):
        values = _choice_values(p)
        return hp.Choice(p.name, values, default=None if default is None else type(values[0])(default))
    sampling = "log" if p.log else "linear"
    if isinstance(p, IntRange):
        # Keras Tuner reads step as a multiplier under log sampling; our log ranges are plain integers
        return hp.Int(p.name, p.low, p.high, step=None if p.log else p.step, sampling=sampling, default=default)
    return hp.Float(p.name, p.low, p.high, step=p.step, sampling=sampling, default=default)
