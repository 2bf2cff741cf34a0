"""The three kinds of parameter a space may search: a choice, an integer range and a float range."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Union

from ..errors import SpaceError

__all__ = ["Choice", "IntRange", "FloatRange", "Param", "param_from_dict"]

Scalar = Union[str, int, float, bool, None]


@dataclasses.dataclass(frozen=True)
class _Base:
    name: str
    when: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()

    def is_active(self, values: Mapping[str, Any]) -> bool:
        """True when every ``when`` condition holds for the values sampled so far."""
        return all(name in values and values[name] in allowed for name, allowed in self.when)

    def _when_dict(self) -> dict[str, Any]:
        return {"when": {name: list(allowed) for name, allowed in self.when}} if self.when else {}


@dataclasses.dataclass(frozen=True)
class Choice(_Base):
    values: tuple[Scalar, ...] = ()

    def contains(self, value: Any) -> bool:
        return value in self.values

    def to_dict(self) -> dict[str, Any]:
        return {"choice": list(self.values), **self._when_dict()}


@dataclasses.dataclass(frozen=True)
class IntRange(_Base):
    low: int = 0
    high: int = 0
    log: bool = False
    step: int = 1

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"int": [self.low, self.high]}
        if self.log:
            out["log"] = True
        if self.step != 1:
            out["step"] = self.step
        return {**out, **self._when_dict()}


@dataclasses.dataclass(frozen=True)
class FloatRange(_Base):
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step is None:
            return True
        steps = (value - self.low) / self.step
        return math.isclose(steps, round(steps), abs_tol=1e-6)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"float": [self.low, self.high]}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return {**out, **self._when_dict()}


Param = Union[Choice, IntRange, FloatRange]

_KINDS = ("choice", "int", "float")
_OPTIONS = {"choice": {"when"}, "int": {"log", "step", "when"}, "float": {"log", "step", "when"}}


def param_from_dict(name: str, spec: Any, *, path: str) -> Param:
    """Validate one ``params`` entry; every error names its key path, the rule and the value."""
    if not isinstance(spec, Mapping):
        raise SpaceError(path, f"must be a mapping such as {{float: [0.0, 1.0]}}, got {spec!r}.")
    kinds = [k for k in _KINDS if k in spec]
    if len(kinds) != 1:
        raise SpaceError(
            path, f"must have exactly one of 'choice', 'int' or 'float', got keys {sorted(spec)}."
        )
    kind = kinds[0]
    extra = sorted(set(spec) - {kind} - _OPTIONS[kind])
    if extra:
        raise SpaceError(
            path, f"unknown option {extra[0]!r} for a {kind} parameter; allowed: {sorted(_OPTIONS[kind])}."
        )
    when = _when_from_dict(spec.get("when"), path=f"{path}.when")
    if kind == "choice":
        values = spec["choice"]
        if not isinstance(values, list) or not values:
            raise SpaceError(f"{path}.choice", f"must be a non-empty list, got {values!r}.")
        for i, v in enumerate(values):
            if not (v is None or isinstance(v, (str, int, float, bool))):
                raise SpaceError(f"{path}.choice[{i}]", f"must be a string, number, boolean or null, got {v!r}.")
        if len(set(map(repr, values))) != len(values):
            raise SpaceError(f"{path}.choice", f"values must be distinct, got {values!r}.")
        return Choice(name=name, values=tuple(values), when=when)

    bounds = spec[kind]
    number = int if kind == "int" else (int, float)
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or any(isinstance(b, bool) or not isinstance(b, number) for b in bounds)
    ):
        raise SpaceError(f"{path}.{kind}", f"must be a list [low, high] of {kind} numbers, got {bounds!r}.")
    low, high = bounds
    if low > high:
        raise SpaceError(f"{path}.{kind}", f"low must not exceed high, got [{low}, {high}].", fix="Swap them.")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{path}.log", f"must be true or false, got {log!r}.")
    if log and low <= 0:
        raise SpaceError(f"{path}.log", f"a log scale needs low > 0, got low={low}.")
    step = spec.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, number) or step <= 0:
            raise SpaceError(f"{path}.step", f"must be a positive {kind}, got {step!r}.")
        if log and (kind == "float" or step != 1):
            raise SpaceError(path, "'step' and 'log: true' cannot be combined (Optuna's rule); drop one.")
        _check_step_divides(low, high, step, path)
    if kind == "int":
        return IntRange(name=name, low=low, high=high, log=log, step=int(step or 1), when=when)
    return FloatRange(
        name=name, low=float(low), high=float(high), log=log, step=None if step is None else float(step), when=when
    )


def _check_step_divides(low: float, high: float, step: float, path: str) -> None:
    """Optuna samples low, low + step, ... and silently cuts the range at the last step below high."""
    steps = (high - low) / step
    if math.isclose(steps, round(steps), rel_tol=0, abs_tol=1e-9):
        return
    last = low + math.floor(steps) * step
    raise SpaceError(f"{path}.step", f"{step} does not divide the range [{low}, {high}] ({high} - {low} is not a "
                     f"multiple of {step}), so {high} could never be sampled; the last value would be {last:g}.",
                     fix=f"Choose a step that divides it, or set high to {last:g}.")


def _when_from_dict(when: Any, *, path: str) -> tuple[tuple[str, tuple[Scalar, ...]], ...]:
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise SpaceError(path, f"must map a parameter to its allowed values, e.g. {{head.dense_layers: [1, 2]}}, "
                         f"got {when!r}.")
    out = []
    for other, allowed in when.items():
        if not isinstance(allowed, list) or not allowed:
            raise SpaceError(f"{path}.{other}", f"must be a non-empty list of values, got {allowed!r}.")
        out.append((str(other), tuple(allowed)))
    return tuple(out)
