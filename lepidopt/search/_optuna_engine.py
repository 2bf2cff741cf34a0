"""The Optuna engine: a study on the run's storage, its sampler and pruner, the baseline enqueued once,
and trials until the study holds the asked-for total of finished trials."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import warnings
from typing import Callable

from ..errors import MissingExtraError
from ..runs import Run
from ._metrics import objective_direction
from ._optuna_space import suggest
from ._reporter import Reporter, TrialStopped
from ._storage import open_storage
from ._study_data import StudyData
from ._trial import run_trial

__all__ = ["create_or_load_study", "optimize", "count_finished", "make_sampler", "make_pruner", "BASELINE_ATTR", "RUN_ATTR"]

log = logging.getLogger("lepidopt")
BASELINE_ATTR = "lepidopt:baseline_enqueued"
RUN_ATTR = "lepidopt:run"


def _finished_states():
    import optuna

    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


class OptunaReporter(Reporter):
    """Reports every epoch; asks the pruner only from ``judge_from`` on, since every pruner made here
    answers no before its warm-up and asking costs a storage round trip (~6 ms at 500 trials)."""

    def __init__(self, trial, *, judge_from: float) -> None:
        self.trial = trial
        self.judge_from = judge_from
        self.step = -1

    def report(self, value: float, step: int) -> None:
        self.trial.report(value, step)
        self.step = step

    def should_stop(self) -> bool:
        return self.step >= self.judge_from and self.trial.should_prune()


def pruning_schedule(run: Run) -> tuple[int, int]:
    """(the most steps a trial reports, the warm-up: steps before any pruner may stop a trial)."""
    longest = run.space.recipe({})
    return longest.epochs_head + longest.epochs_finetune, longest.epochs_head // 2


def make_sampler(name: str, *, seed: int):
    import optuna

    if name == "tpe":
        return _quietly(optuna.samplers.TPESampler, seed=seed, n_startup_trials=5, multivariate=True, group=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return _quietly(optuna.samplers.QMCSampler, seed=seed, warn_independent_sampling=False)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise MissingExtraError("sampler 'cmaes': needs the cmaes package; pip install cmaes.") from None
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise MissingExtraError("sampler 'gp': Optuna's GPSampler needs PyTorch; pip install 'lepidopt[gp]'.") from None
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(name)


def _quietly(factory, **kwargs):
    """Build an Optuna object whose options are marked experimental without warning the user about it."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory(**kwargs)


def make_pruner(name: str, *, max_steps: int, warmup_steps: int):
    """Pruners that judge a trial only after ``warmup_steps`` epochs: heads on fresh features start
    near chance and separate later, so judging them at once would prune the good ones too."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=warmup_steps)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(warmup_steps, 1), max_resource=max(max_steps, 1))
    if name == "sh":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(warmup_steps, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(name)


def create_or_load_study(run: Run, storage=None):
    """The run's study, created on first use; ``storage`` is an opened storage, or None to open the run's."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    max_steps, warmup = pruning_schedule(run)
    study = optuna.create_study(
        study_name=run.study,
        storage=storage if storage is not None else open_storage(run.storage),
        sampler=make_sampler(run.sampler, seed=run.seed),
        pruner=make_pruner(run.pruner, max_steps=max_steps, warmup_steps=warmup),
        direction=objective_direction(run.objective),
        load_if_exists=True,
    )
    study.set_user_attr(RUN_ATTR, run.to_dict())
    study.set_user_attr("lepidopt:objective", run.objective)
    if run.space.baseline and not study.user_attrs.get(BASELINE_ATTR):
        study.enqueue_trial(dict(run.space.baseline), user_attrs={"lepidopt:baseline": True}, skip_if_exists=True)
        study.set_user_attr(BASELINE_ATTR, True)
    return study


def count_finished(study) -> int:
    return len(study.get_trials(deepcopy=False, states=_finished_states()))


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in timings.items()}


def log_trial(study, trial) -> None:
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    reason = trial.user_attrs.get("fail_reason", "")
    log.info("trial %d %s: value %s%s", trial.number, trial.state.name.lower(), value, f" ({reason})" if reason else "")


def optimize(run: Run, study, data: StudyData, *, n_trials: int | None, timeout: float | None,
             on_trial: Callable | None = None) -> None:
    """Run trials until the study holds ``n_trials`` finished trials in total, or ``timeout`` seconds pass."""
    import optuna

    judge_from = float("inf") if run.pruner == "none" else pruning_schedule(run)[1]

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, run.space)
        recipe = run.space.recipe(params)
        if run.weights:
            recipe = dataclasses.replace(recipe, weights=run.weights)
        trial.set_user_attr("recipe", recipe.to_flat())
        trial.set_user_attr("seed", run.seed + trial.number)
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
        try:
            result = run_trial(recipe, data, OptunaReporter(trial, judge_from=judge_from), seed=run.seed + trial.number,
                               objective=run.objective)
        except TrialStopped as stop:
            trial.set_user_attr("history", stop.history)
            trial.set_user_attr("timings", _rounded(stop.timings))
            raise optuna.TrialPruned(str(stop)) from None
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        trial.set_user_attr("history", result.history)
        trial.set_user_attr("metrics", result.metrics)
        trial.set_user_attr("timings", _rounded(result.timings))
        trial.set_user_attr("n_train", result.n_train)
        return result.value

    callbacks = [log_trial]
    remaining = None
    if n_trials is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(n_trials, states=_finished_states()))
        remaining = n_trials - count_finished(study)
        if remaining <= 0:
            return
    if on_trial is not None:
        callbacks.append(on_trial)
    study.optimize(
        objective,
        n_trials=remaining,
        timeout=timeout,
        callbacks=callbacks,
        catch=(Exception,),
        gc_after_trial=False,  # every trial starts by clearing the Keras session, which collects
        show_progress_bar=sys.stderr.isatty() and remaining is not None,
    )
