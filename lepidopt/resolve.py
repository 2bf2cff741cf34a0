"""Resolving a study's run: settings come from three places, resolved here and nowhere else: the caller's
arguments first, then the study's run.yaml, then the defaults; each engine settles its own settings.
Settings that define the study (data, space, objective, split, weights, how features are cached and
augmented, engine and Keras Tuner's oracle) cannot change once it exists; the other settings (sampler,
pruner, seed, the feature cache's size limit) can.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from ._sizes import parse_size
from ._numbers import whole_number
from .recipe import TAXONOMY_KEYS
from .data import DataSpec
from .engines import get_engine
from .errors import SettingError, SpaceError, StudyError, option
from .runs import (DEFAULTS, DEFINING, Run, absolute_storage, check_augment_views, default_storage, read_run,
                   study_dir)
from .spaces import Space, load_space, space_from_dict
from .trial import DECODERS, check_objective

__all__ = ["resolve_run"]


def resolve_run(*, study: str, results_dir: str | Path = "results", data: DataSpec | Mapping | str | None = None,
                space: Space | str | None = None, **options: Any) -> Run:
    """The run for ``study``: given options, then its run.yaml, then defaults. Options left as None are not given.

    Raises StudyError when a new study lacks data or space, or when an option would change what
    defines an existing study; SettingError for a value an option cannot take.
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise StudyError(f"run option {unknown[0]!r}", f"unknown; known options are {sorted(DEFAULTS)}.")
    folder = study_dir(results_dir, study)
    saved = read_run(folder)
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if "storage" in given:
        given["storage"] = absolute_storage(given["storage"])
    if given.get("weights") not in (None, "imagenet", "none"):
        given["weights"] = str(Path(given["weights"]).resolve())  # a worker may run from another folder
    if "feature_cache_limit" in given:
        given["feature_cache_limit"] = parse_size(given["feature_cache_limit"], setting="feature_cache_limit")
    if data is not None:
        given["data"] = _data_spec(data).to_dict()
    if space is not None:
        given["space"] = (space if isinstance(space, Space) else load_space(space)).to_dict()

    if saved is None:
        missing = [k for k in ("data", "space") if k not in given]
        if missing:
            raise StudyError(
                f"study {study!r}", f"does not exist yet in {str(folder.parent)!r}, so it needs "
                f"{option(missing[0])} to start.",
                fix=f"To resume a study, give the name (and {option('results_dir')}) it was created with."
            )
        merged = {**DEFAULTS, **given}
    else:
        if "space" in given and given["space"] != saved.get("space"):
            raise StudyError(
                f"study {study!r}", f"the space {given['space']['name']!r} given differs from the space recorded in "
                "its run.yaml, and a study's space cannot change.",
                fix=f"Drop {option('space')} to resume, or start a new {option('study')}."
            )
        if "data" in given and given["data"] != saved.get("data"):
            raise StudyError(f"study {study!r}", f"{_data_difference(saved.get('data') or {}, given['data'])}; a "
                             "study's data cannot change.",
                             fix=f"Drop {option('data')} to resume, or start a new {option('study')}.")
        for key in DEFINING:
            if key not in ("space", "data") and key in given and given[key] != saved.get(key, DEFAULTS.get(key)):
                raise StudyError(
                    f"study {study!r}", f"was created with {key} = {_short(saved.get(key, DEFAULTS.get(key)))}, "
                    f"not {_short(given[key])}; {key} cannot change within a study.",
                    fix=f"Drop {option(key)} to resume, or start a new {option('study')}."
                )
        merged = {**DEFAULTS, **{k: v for k, v in saved.items() if k in DEFAULTS or k in ("data", "space")}, **given}
        if "storage" not in given and "***" in str(saved.get("storage")):
            raise StudyError(
                f"study {study!r}", "its storage URL holds a password, which run.yaml does not keep; "
                f"pass {option('storage')} with the full URL."
            )
    storage = merged.pop("storage") or default_storage(folder)
    _check_settings(merged, given)
    return Run(
        study=study,
        results_dir=Path(results_dir).resolve(),
        storage=storage,
        data=DataSpec.from_dict(merged.pop("data")),
        space=space_from_dict(merged.pop("space"), source="run.yaml space"),
        **merged,
    )


def _check_settings(merged: dict[str, Any], given: dict[str, Any]) -> None:
    """Each setting takes a value it can; the engine settles its own settings (checks them, fills its
    defaults, and clears what it does not use)."""
    get_engine(merged["engine"]).settle(merged, given)
    if not whole_number(merged["seed"], at_least=0):
        raise SettingError("seed", merged["seed"], "must be a whole number, 0 or more.")
    check_augment_views(merged["augment_views"])
    if not isinstance(merged["feature_cache"], bool):
        raise SettingError("feature_cache", merged["feature_cache"], "must be true or false.")
    levels = (merged.get("data") or {}).get("levels")
    check_objective(merged["objective"], None if levels is None else tuple(levels))
    if merged["decode"] not in DECODERS:
        raise SettingError("decode", merged["decode"], f"must be one of {', '.join(DECODERS)}.")
    if levels is None and "decode" in given and given["decode"] != DEFAULTS["decode"]:
        raise SettingError("decode", given["decode"], "reads a taxonomy's levels, but the data has one label.",
                           fix=f"Give the data's levels ({option('levels')}), or drop {option('decode')}.")
    if merged["objective"] == "tree.consistent_share" and merged["decode"] == "consistent":
        raise SettingError("objective", merged["objective"], "is 1 for every trial when predictions are decoded as "
                           "paths of the tree (decode consistent), so it cannot tell recipes apart.",
                           fix=f"Optimise it with {option('decode')} independent, or choose another objective.")
    _check_taxonomy_keys(merged["space"], None if levels is None else tuple(levels))


def _check_taxonomy_keys(space: Mapping[str, Any], levels: tuple[str, ...] | None) -> None:
    """A space's taxonomy keys need a study with taxonomy levels, and its sampling levels must be among them."""
    name = space.get("name", "space")
    used: dict[str, list[Any]] = {}
    for values in (space.get("fixed") or {}, space.get("baseline") or {}):
        for key, value in values.items():
            if key in TAXONOMY_KEYS:
                used.setdefault(key, []).append(value)
    for key, param in (space.get("params") or {}).items():
        if key in TAXONOMY_KEYS:
            used.setdefault(key, []).extend(param.get("choice", []) if isinstance(param, Mapping) else [])
    if used and levels is None:
        key = next(iter(used))
        raise SpaceError(f"space {name!r}: {key}", "applies to a study with taxonomy levels, and the data has one "
                         "label.", fix=f"Give the data's levels ({option('levels')}), or use a space without "
                         "taxonomy keys.")
    wrong = [value for value in used.get("sampling.level", []) if levels is not None and value not in levels]
    if wrong:
        raise SpaceError(f"space {name!r}: sampling.level", f"names level {wrong[0]!r}, which the data does not have; "
                         f"its levels are {', '.join(levels or ())}.",
                         fix="Name the data's levels in the space (its choices, fixed value and baseline).")


def _data_difference(saved: Mapping[str, Any], given: Mapping[str, Any]) -> str:
    """How the data given differs from the data a study was created with, in words."""
    if saved.get("source") != given.get("source"):
        return f"its data is {saved.get('source')}, and {option('data')} names {given.get('source')}"
    changed = [f"{key} {saved.get(key)!r}, not {given.get(key)!r}" for key in given if saved.get(key) != given.get(key)]
    return f"its data {saved.get('source')} was read with {'; '.join(changed)}"


def _data_spec(data: DataSpec | Mapping | str) -> DataSpec:
    spec = data if isinstance(data, DataSpec) else DataSpec(source=data) if isinstance(data, str) else \
        DataSpec.from_dict(data)
    absolute: dict[str, Any] = {k: str(Path(v).resolve()) for k in ("source", "image_root", "val_manifest",
                                                                    "test_manifest") if (v := getattr(spec, k))}
    return dataclasses.replace(spec, **absolute)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "..."
