"""What every engine does before and after it trains a recipe: the recipe with the run's weights, the seed and
checkpoint folder of the trial it belongs to, where it resumes, what it records, and how a failure reads."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..recipe import Recipe
from ..runs import Run
from ..spaces import Space
from ..study import attrs
from ..trial import Checkpoints, Saved
from ._policy import TrialPolicy

__all__ = ["TrialSetup", "set_up_trial", "trial_recipe", "failure_text"]


@dataclasses.dataclass(frozen=True)
class TrialSetup:
    recipe: Recipe
    seed: int
    checkpoints: Checkpoints | None
    saved: Saved | None  # the checkpoint it goes on from, if any
    attrs: dict[str, Any]  # what the trial records before it trains


def trial_recipe(run: Run, params: dict[str, Any], space: Space | None = None) -> Recipe:
    """The recipe of ``params`` in ``space`` (default: the run's), with the run's weights when the run overrides
    them."""
    recipe = (space or run.space).recipe(params)
    return dataclasses.replace(recipe, weights=run.weights) if run.weights else recipe


def set_up_trial(run: Run, recipe: Recipe, *, root: int, folder: str, policy: TrialPolicy,
                 seed: int | None = None) -> TrialSetup:
    """The trial ``root`` (the trial whose seed and checkpoints this run of it uses), its checkpoints in
    ``trials/<folder>`` of the study's folder and the checkpoint it resumes from. ``seed``: when not the root's
    own (a stage-two trial trains on with its head's)."""
    seed = run.seed + root if seed is None else seed
    checkpoints = policy.checkpoints_in(run.folder / "trials" / folder)
    saved = checkpoints.latest() if checkpoints else None
    recorded = attrs.identity_attrs(recipe, seed=seed, root=root)
    if saved:
        recorded[attrs.RESUMED_FROM] = saved.position
    return TrialSetup(recipe=recipe, seed=seed, checkpoints=checkpoints, saved=saved, attrs=recorded)


def failure_text(exc: BaseException) -> str:
    """A failed trial's reason as the study records it."""
    return f"{type(exc).__name__}: {exc}"[:2000]
