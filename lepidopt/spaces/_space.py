"""A search space: fixed settings, searched params with conditions, and a hand-made baseline."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import SpaceError
from ..recipe import RECIPE_KEYS, Recipe
from ._params import Param, param_from_dict
from ._yaml import read_space_yaml

__all__ = ["Space", "space_from_dict", "load_space_file"]

_TOP_KEYS = ("name", "description", "fixed", "params", "baseline")


@dataclasses.dataclass(frozen=True)
class Space:
    """A validated space. ``params`` keep their file order, which is also their sampling order."""

    name: str
    params: tuple[Param, ...]
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    baseline: Mapping[str, Any] | None = None
    description: str = ""

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def recipe(self, params: Mapping[str, Any]) -> Recipe:
        """The recipe for sampled ``params``: defaults, then fixed values, then the active params."""
        merged = dict(self.fixed)
        for p in self.params:
            if p.name in params and p.is_active(params):
                merged[p.name] = params[p.name]
        return Recipe.from_flat(merged, where=f"space {self.name!r}")

    def active_names(self, params: Mapping[str, Any]) -> list[str]:
        return [p.name for p in self.params if p.is_active(params)]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["fixed"] = dict(self.fixed)
        out["params"] = {p.name: p.to_dict() for p in self.params}
        if self.baseline is not None:
            out["baseline"] = dict(self.baseline)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


def space_from_dict(data: Any, *, source: str = "space") -> Space:
    """Validate a space given as plain data (for example parsed YAML)."""
    if not isinstance(data, Mapping):
        raise SpaceError(source, f"a space must be a mapping with keys {list(_TOP_KEYS)}, got {type(data).__name__}.")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise SpaceError(source, f"unknown top-level key {unknown[0]!r}; allowed: {list(_TOP_KEYS)}.")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpaceError(f"{source}.name", f"must be a non-empty string, got {name!r}.")

    fixed = data.get("fixed") or {}
    if not isinstance(fixed, Mapping):
        raise SpaceError(f"{source}.fixed", f"must be a mapping of recipe keys to values, got {fixed!r}.")
    Recipe.from_flat(fixed, where=f"{source}.fixed")

    raw_params = data.get("params")
    if not isinstance(raw_params, Mapping) or not raw_params:
        raise SpaceError(f"{source}.params", f"must be a non-empty mapping of parameter specs, got {raw_params!r}.")
    params: list[Param] = []
    for key, spec in raw_params.items():
        path = f"{source}.params.{key}"
        if key not in RECIPE_KEYS:
            raise SpaceError(path, f"unknown parameter; the searchable keys are {', '.join(RECIPE_KEYS)}.")
        if key in fixed:
            raise SpaceError(path, "is also under 'fixed'; a key is either fixed or searched, not both.")
        param = param_from_dict(key, spec, path=path)
        _check_domain(param, path)
        _check_conditions(param, params, path)
        params.append(param)
    space = Space(
        name=name,
        params=tuple(params),
        fixed=dict(fixed),
        description=str(data.get("description") or ""),
    )
    baseline = data.get("baseline")
    if baseline is not None:
        _check_baseline(space, baseline, f"{source}.baseline")
        space = dataclasses.replace(space, baseline=dict(baseline))
    return space


def load_space_file(path: str | Path) -> Space:
    """A space from a YAML file, checked as ``lepidopt spaces validate`` checks it.

    Args:
        path: The YAML file.

    Returns:
        The space, validated.

    Raises:
        SpaceError: A file that cannot be read, is not YAML, or breaks a rule of the space format (each
            message names the key path, the rule and the value).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpaceError(f"space file {str(path)!r}", f"cannot be read ({exc.strerror}).") from None
    space = space_from_dict(read_space_yaml(text, source=f"space file {str(path)!r}"), source=path.name)
    _check_weights_files(space, path.name)
    return space


def _check_weights_files(space: Space, source: str) -> None:
    """Every weights file a space file names exists, so a typo fails when the space is read (by spaces validate or
    a new search), not in the middle of a study. A recorded space is not checked again: a worker elsewhere may
    see other files, and its trials report a missing one."""
    named = [(f"{source}.fixed.weights", space.fixed.get("weights"))]
    named += [(f"{source}.params.weights.choice", value) for p in space.params if p.name == "weights"
              for value in getattr(p, "values", ())]
    for path, value in named:
        if value is not None and value not in ("imagenet", "none") and not Path(value).is_file():
            raise SpaceError(path, f"weights file {value!r} does not exist (a relative path is read from the current "
                             f"folder, {os.getcwd()}).", fix="Give the path of a weights file, or imagenet or none.")


def _check_domain(param: Param, path: str) -> None:
    """Every value a param can take must make a valid recipe (so a bad range fails here, not mid-study)."""
    if hasattr(param, "values"):
        samples = list(param.values)
    else:
        samples = [param.low, param.high]
    for value in samples:
        try:
            Recipe.from_flat({param.name: value}, where="x")
        except SpaceError as exc:
            raise SpaceError(path, f"value {value!r} is not allowed: {exc.rule}", fix=exc.fix) from None


def _check_conditions(param: Param, earlier: list[Param], path: str) -> None:
    names = {p.name: p for p in earlier}
    for other, allowed in param.when:
        if other == param.name:
            raise SpaceError(f"{path}.when.{other}", "a parameter cannot depend on itself.")
        if other not in names:
            raise SpaceError(
                f"{path}.when.{other}", "must name a parameter declared above this one "
                f"(declared so far: {sorted(names) or 'none'})."
            )
        for value in allowed:
            if not names[other].contains(value):
                raise SpaceError(
                    f"{path}.when.{other}",
                    f"value {value!r} can never be sampled by {other} ({names[other].to_dict()})."
                )


def _check_baseline(space: Space, baseline: Any, path: str) -> None:
    if not isinstance(baseline, Mapping):
        raise SpaceError(path, f"must be a mapping of parameter values, got {baseline!r}.")
    for key, value in baseline.items():
        if key in space.fixed:
            raise SpaceError(f"{path}.{key}", "is fixed in this space; the baseline lists searched params only.")
        try:
            param = space.param(key)
        except KeyError:
            raise SpaceError(
                f"{path}.{key}", f"is not a searched parameter; searched: {[p.name for p in space.params]}."
            ) from None
        if not param.contains(value):
            raise SpaceError(f"{path}.{key}", f"value {value!r} lies outside its range {param.to_dict()}.")
    for param in space.params:
        active = param.is_active(baseline)
        if active and param.name not in baseline:
            raise SpaceError(path, f"misses {param.name!r}, which is active for this baseline; give it a value.")
        if not active and param.name in baseline:
            raise SpaceError(
                f"{path}.{param.name}", "is inactive for this baseline (its 'when' does not hold); remove it."
            )
