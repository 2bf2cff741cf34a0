"""The study as lepidopt's record in an Optuna storage: made with the run, its objective and the engine's own
first steps; loaded again by every process that works on it."""

from __future__ import annotations

from typing import Any, Callable

from ..runs import Run
from ..trial import objective_direction
from . import _attrs as attrs
from ._experimental import quietly

__all__ = ["record_study", "update_record", "load_study"]


def record_study(run: Run, storage: Any, *, initialize: Callable[[Any, Run], None]) -> Any:
    """Create the run's study in ``storage`` (an opened storage that does not hold it yet): its record of the run
    and objective, the objective's name for optuna-dashboard; then ``initialize(study, run)``, the engine's own
    record (its name, a baseline trial to enqueue)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=run.study, storage=storage, sampler=optuna.samplers.RandomSampler(),
                                direction=objective_direction(run.objective))
    update_record(study, run)
    study.set_user_attr(attrs.OBJECTIVE, run.objective)
    quietly(study.set_metric_names, metric_names=[run.objective])
    initialize(study, run)
    return study


def update_record(study: Any, run: Run) -> None:
    """Record the run in the study, where workers read it (its storage URL masked, its folder on this machine)."""
    study.set_user_attr(attrs.RUN, {**run.to_dict(), "results_dir": str(run.results_dir)})


def load_study(run: Run, storage: Any) -> Any:
    """The run's existing study in ``storage`` (opened); the engine that runs its trials sets its sampler and
    pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=run.study, storage=storage, sampler=optuna.samplers.RandomSampler())
