"""The Keras Tuner engine: Keras Tuner's oracle (Hyperband, Bayesian optimisation, random or grid search)
chooses the recipes; lepidopt's trial runner trains them (two phases, sampling, class weights, feature
cache, checkpoints) for the same objective; every finished trial is imported into the study's Optuna
storage, flagged as imported, so that status, export, report and the dashboard read it as they read a
trial Optuna ran.

The Keras Tuner project is ``results/<study>/keras_tuner/``. Running the same command again reloads it
(``overwrite=False``); Keras Tuner runs the trials that were running when its process died again, with
the same id and hyperparameters, from their first epoch, and lepidopt's checkpoints
(``trials/kt-<id>/``) let them go on after their last saved epoch instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .._signals import Interrupted, checkpoint_in_progress
from ..errors import SettingError, StudyError, option
from ..recipe import Recipe
from ..runs import Run
from ..study import attrs
from ..trial import NullReporter, StudyData, discard, objective_direction, run_trial
from ._base import Engine, register
from ._keras_tuner_role import KerasTunerRole
from ._keras_tuner_space import active_params, check_keras_tuner_space, keras_tuner_space
from ._optuna_space import distributions
from ._policy import TrialPolicy
from ._pruning import pruning_schedule
from ._trial_setup import failure_text, set_up_trial, trial_recipe

if TYPE_CHECKING:
    import keras_tuner
    import optuna

__all__ = ["KerasTunerEngine", "keras_tuner_search", "within_budget", "PROJECT", "TUNERS"]

log = logging.getLogger("lepidopt")
TUNERS = ("hyperband", "bayesian", "random", "grid")  # Keras Tuner's oracles, the default first
PROJECT = "keras_tuner"  # the Keras Tuner project folder inside the study's folder
HYPERBAND_FACTOR = 3


def keras_tuner_search(run: Run, study: optuna.Study, data: StudyData, *, n_trials: int | None, timeout: float | None,
                       policy: TrialPolicy = TrialPolicy()) -> None:
    """Run Keras Tuner's search over the run's space until its oracle has created ``n_trials`` trials in all
    (the ones of earlier runs included) or ``timeout`` seconds pass; each trial goes into ``study`` when it
    ends. With KERASTUNER_ORACLE_IP, _PORT and _TUNER_ID set, this process is the chief (tuner id
    'chief...': it serves the oracle until the search is over) or a worker of a distributed search."""
    trials = _Trials(run, study, data, policy=policy,
                     deadline=None if timeout is None else time.monotonic() + timeout)
    oracle = make_oracle(run, n_trials=n_trials)
    # Keras Tuner prints to stdout: "Reloading Tuner from ...", and (1.4.8) every conditional scope's first
    # value each time a distributed search sends the space; lepidopt logs what matters to stderr.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        tuner = _tuner_class()(oracle, trials=trials, directory=str(run.folder), project_name=PROJECT,
                               overwrite=False)
        # Keras Tuner reloads a project only if its tuner file exists, which it first writes after a trial
        # ends: a search killed in its first trial would start afresh and reuse trial ids. Written now.
        tuner.save()
        log.info("keras tuner %s: project %s, %d trials so far, tuner id %s", run.tuner, tuner.project_dir,
                 len(oracle.trials), tuner.tuner_id)
        if run.tuner == "grid" and oracle.trials and (n_trials is None or len(oracle.trials) < n_trials):
            raise StudyError(
                f"study {run.study!r}", f"Keras Tuner's grid oracle cannot go on in a new process: it does not save "
                f"its place in the grid (keras-team/keras-tuner#1055), and would run no further trial; its "
                f"{len(oracle.trials)} trials are kept.",
                fix=f"To search further, start a new study, with {option('tuner', 'grid')} and the whole "
                    f"{option('n_trials')} in one run, or set {option('tuner')} to random, bayesian or hyperband, "
                    "which go on where they stopped.")
        try:
            tuner.search(verbose=0)
        except _OutOfTime:
            log.info("keras tuner: the timeout has passed; no further trial started")


def make_oracle(run: Run, *, n_trials: int | None) -> keras_tuner.Oracle:
    import keras_tuner

    direction = "max" if objective_direction(run.objective) == "maximize" else "min"
    common = dict(objective=keras_tuner.Objective(run.objective, direction=direction),
                  hyperparameters=keras_tuner_space(run.space), seed=run.seed,
                  max_consecutive_failed_trials=2**31)  # TrialPolicy.max_failures decides, per process
    oracles = keras_tuner.oracles
    if run.tuner == "hyperband":
        max_epochs = max(pruning_schedule(run).max_steps, 1)
        oracle = _guarded(oracles.HyperbandOracle)(max_epochs=max_epochs, factor=HYPERBAND_FACTOR,
                                                  hyperband_iterations=1 if n_trials is None else None, **common)
        oracle.max_trials = n_trials  # brackets repeat until the study's total
        return oracle
    kinds = {"bayesian": oracles.BayesianOptimizationOracle, "random": oracles.RandomSearchOracle,
             "grid": oracles.GridSearchOracle}
    if run.tuner not in kinds:
        raise SettingError("tuner", run.tuner, f"must be one of {', '.join(TUNERS)}.")
    return _guarded(kinds[run.tuner])(max_trials=n_trials, **common)


def within_budget(recipe: Recipe, epochs: int) -> Recipe:
    """The recipe cut to Hyperband's budget of ``epochs`` epochs: head epochs first, then fine-tuning."""
    head = min(recipe.epochs_head, epochs)
    return dataclasses.replace(recipe, epochs_head=head, epochs_finetune=min(recipe.epochs_finetune, epochs - head))


class _OutOfTime(Exception):
    pass


class _Trials:
    """What the tuner does with each trial Keras Tuner's oracle creates."""

    def __init__(self, run: Run, study: optuna.Study, data: StudyData, *, policy: TrialPolicy,
                 deadline: float | None) -> None:
        self.run, self.study, self.data, self.policy, self.deadline = run, study, data, policy, deadline
        self.failures: list[str] = []
        self.last_failure: str | None = None
        self.last_value: float | None = None

    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise _OutOfTime()

    def run_one(self, trial: keras_tuner.engine.trial.Trial) -> float:
        import keras_tuner

        self.last_failure = self.last_value = None
        values = trial.hyperparameters.values
        params = active_params(self.run.space, values)
        imported = self._imported(trial.trial_id)
        if imported is not None:  # the process died after importing it, before Keras Tuner recorded it
            if imported.value is None:
                self.last_failure = imported.user_attrs.get(attrs.FAIL_REASON, "failed")
                raise keras_tuner.errors.FailedTrialError(self.last_failure)
            self.last_value = imported.value
            return imported.value
        budget = int(values["tuner/epochs"]) if "tuner/epochs" in values else None  # Hyperband's epochs
        recipe = trial_recipe(self.run, params)
        if budget is not None:
            recipe = within_budget(recipe, budget)
        setup = set_up_trial(self.run, recipe, root=int(trial.trial_id), folder=f"kt-{trial.trial_id}",
                             policy=self.policy)
        recorded: dict[str, Any] = {**setup.attrs, attrs.KERAS_TUNER_TRIAL_ID: trial.trial_id,
                                    attrs.IMPORTED_FROM: f"keras-tuner ({self.run.tuner})"}
        if budget is not None:
            recorded[attrs.KERAS_TUNER_EPOCHS] = budget
        if setup.saved:
            log.info("keras tuner trial %s resumes after its %s epoch %d", trial.trial_id, setup.saved.phase,
                     setup.saved.epoch)
        started = datetime.datetime.now()
        try:
            result = run_trial(setup.recipe, self.data, NullReporter(), seed=setup.seed,
                               objective=self.run.objective, checkpoints=setup.checkpoints,
                               decode=self.run.decode)
        except Interrupted:
            raise  # the trial stays running in Keras Tuner's project, which runs it again on reload
        except Exception as exc:
            self.last_failure = failure_text(exc)
            self._import(params, {**recorded, attrs.FAIL_REASON: self.last_failure}, started=started, value=None,
                         history=[])
            discard(setup.checkpoints)
            raise keras_tuner.errors.FailedTrialError(self.last_failure) from exc
        recorded.update(attrs.outcome_attrs(history=result.history, timings=result.timings, metrics=result.metrics,
                                            n_train=result.n_train, stop_reason=result.stop_reason))
        self._import(params, recorded, started=started, value=result.value, history=result.history)
        discard(setup.checkpoints)
        self.last_value = result.value
        return result.value

    def ended(self, trial: keras_tuner.engine.trial.Trial) -> None:
        """After Keras Tuner recorded the trial: log it, and stop after too many failures in a row."""
        value = "-" if self.last_value is None else f"{self.last_value:.4f}"
        log.info("keras tuner trial %s %s: value %s%s", trial.trial_id, trial.status.lower(), value,
                 f" ({self.last_failure})" if self.last_failure else "")
        if self.last_failure is None:
            self.failures.clear()
            return
        self.failures.append(self.last_failure)
        if len(self.failures) >= self.policy.max_failures:
            raise self.policy.too_many_failures(self.failures)

    def _imported(self, trial_id: str) -> optuna.trial.FrozenTrial | None:
        return next((t for t in self.study.get_trials(deepcopy=False)
                     if t.user_attrs.get(attrs.KERAS_TUNER_TRIAL_ID) == trial_id),
                    None)

    def _import(self, params: dict[str, Any], recorded: dict[str, Any], *, started: datetime.datetime,
                value: float | None, history: list[dict]) -> None:
        import optuna

        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
        frozen = optuna.trial.create_trial(
            state=state, value=value, params=params, distributions=distributions(self.run.space, params),
            user_attrs=recorded, intermediate_values={e["step"]: e[self.run.objective] for e in history})
        frozen.datetime_start = started
        self.study.add_trial(frozen)


def _guarded(oracle_class: Any) -> Any:
    """The oracle, its state files written whole: a SIGTERM arriving meanwhile takes effect after the write."""
    Oracle: Any = oracle_class

    class Guarded(Oracle):
        def save(self) -> None:
            with checkpoint_in_progress():
                super().save()

        def _save_trial(self, trial: keras_tuner.engine.trial.Trial) -> None:
            with checkpoint_in_progress():
                super()._save_trial(trial)

    Guarded.__name__ = Guarded.__qualname__ = oracle_class.__name__
    return Guarded


_TUNER_CLASS = None


def _tuner_class() -> type[keras_tuner.Tuner]:
    """Defined on first use: importing keras_tuner imports TensorFlow."""
    global _TUNER_CLASS
    if _TUNER_CLASS is None:
        import keras_tuner

        class LepidoptTuner(keras_tuner.Tuner):
            """A Keras Tuner tuner whose trials are lepidopt trials."""

            def __init__(self, oracle: keras_tuner.Oracle, *, trials: _Trials, **kwargs: Any) -> None:
                self._lepidopt_trials = trials
                super().__init__(oracle=oracle, **kwargs)

            def run_trial(self, trial: keras_tuner.engine.trial.Trial, *args: Any, **kwargs: Any) -> float:
                return self._lepidopt_trials.run_one(trial)

            def pre_create_trial(self) -> None:
                self._lepidopt_trials.check_time()

            def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
                super().on_trial_end(trial)
                self._lepidopt_trials.ended(trial)

            def save(self) -> None:
                with checkpoint_in_progress():
                    super().save()

        _TUNER_CLASS = LepidoptTuner
    return _TUNER_CLASS


@register
class KerasTunerEngine(Engine):
    """Keras Tuner's oracles over the same space; its trials are imported into the study's storage. Distributed
    the Keras Tuner way: a chief serves the oracle, workers ask it for trials."""

    name = "keras-tuner"

    def settle(self, settings: dict[str, Any], given: Mapping[str, Any]) -> None:
        for optuna_only in ("sampler", "pruner"):
            if optuna_only in given:
                raise SettingError(optuna_only, given[optuna_only], "is an Optuna setting, and this study's engine is "
                                   f"keras-tuner; choose Keras Tuner's oracle: set {option('tuner')} to "
                                   f"{', '.join(TUNERS[:-1])} or {TUNERS[-1]}.")
        if settings["strategy"] not in (None, "joint"):
            raise SettingError("strategy", settings["strategy"], "is Optuna's: Keras Tuner's oracles choose whole "
                               f"recipes; leave {option('strategy')} out, or search with the optuna engine.")
        settings["tuner"] = settings["tuner"] or TUNERS[0]
        settings["strategy"] = "joint"
        settings["sampler"] = settings["pruner"] = None  # Keras Tuner's oracle samples and schedules
        if settings["tuner"] not in TUNERS:
            raise SettingError("tuner", settings["tuner"], f"must be one of {', '.join(TUNERS)}.")

    def check(self, run: Run) -> None:
        check_keras_tuner_space(run.space)

    def label(self, run: Run) -> str:
        return f"{self.name} ({run.tuner})"

    def status_note(self, run: Run) -> str:
        return (f"engine {self.label(run)}: its trials as imported from {run.folder / PROJECT} "
                f"(user attribute {attrs.KERAS_TUNER_TRIAL_ID} holds Keras Tuner's trial id)")

    def join(self, run: Run, role: Any) -> None:
        (role or KerasTunerRole.from_flags()).export()

    def run_trials(self, run: Run, study: Any, data: StudyData, *, n_trials: int | None, timeout: float | None,
                   policy: TrialPolicy, on_trial: Callable[[Any, Any], None] | None = None,
                   sampler_seed: int | None = None) -> None:  # the chief's oracle chooses, seeded with the run's
        keras_tuner_search(run, study, data, n_trials=n_trials, timeout=timeout, policy=policy)

    def after_interrupt(self, study: Any, stop: Interrupted, *, retries: int) -> str:
        return "Keras Tuner runs its trial again, from its last checkpoint; "
