"""The Optuna engine: a study on the run's storage, its sampler and pruner, the baseline enqueued once,
and trials until the study holds the asked-for total of finished trials."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from ..errors import MissingExtraError, SettingError, TooManyFailures
from ..runs import Run
from ._checkpoint import Checkpoints, discard
from ._experimental import quietly
from ._metrics import objective_direction
from ._optuna_space import suggest
from ._reporter import Reporter, TrialStopped
from ._signals import Interrupted
from ._study_data import StudyData
from ._trial import run_trial
from ._trial_attrs import identity_attrs, outcome_attrs

__all__ = ["record_study", "update_record", "load_for_trials", "check_engine", "optimize", "TrialPolicy",
           "count_finished", "make_sampler", "make_pruner", "ENGINE_ATTR", "RUN_ATTR", "TOTAL_ATTR",
           "SURPLUS_ATTR", "log_trial", "pruning_schedule"]

log = logging.getLogger("lepidopt")
RUN_ATTR = "lepidopt:run"
ENGINE_ATTR = "lepidopt:engine"
TOTAL_ATTR = "lepidopt:n_trials"  # the total of finished trials asked for, which workers run up to


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
        return quietly(optuna.samplers.TPESampler, seed=seed, n_startup_trials=5, multivariate=True, group=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return quietly(optuna.samplers.QMCSampler, seed=seed, warn_independent_sampling=False)
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


def record_study(run: Run, storage):
    """Create the run's study in ``storage`` (an opened storage that does not hold it yet): its record of the run,
    objective and engine, the objective's name for optuna-dashboard, and the space's baseline enqueued as its
    first trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=run.study, storage=storage, sampler=_sampler(run), pruner=_pruner(run),
                                direction=objective_direction(run.objective))
    update_record(study, run)
    study.set_user_attr("lepidopt:objective", run.objective)
    study.set_user_attr(ENGINE_ATTR, run.engine if run.engine == "optuna" else f"{run.engine} ({run.tuner})")
    quietly(study.set_metric_names, metric_names=[run.objective])
    if run.engine == "optuna" and run.space.baseline:
        study.enqueue_trial(dict(run.space.baseline), user_attrs={"lepidopt:baseline": True})
    return study


def update_record(study, run: Run) -> None:
    """Record the run in the study, where workers read it (its storage URL masked, its folder on this machine)."""
    study.set_user_attr(RUN_ATTR, {**run.to_dict(), "results_dir": str(run.results_dir)})


def load_for_trials(run: Run, storage):
    """The run's existing study in ``storage`` (opened), with the run's sampler and pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=run.study, storage=storage, sampler=_sampler(run), pruner=_pruner(run))


def check_engine(run: Run) -> None:
    """Fail before anything is made when the run's sampler or pruner cannot be built (a missing extra)."""
    _sampler(run)
    _pruner(run)


def _sampler(run: Run):
    import optuna

    # A Keras Tuner study holds the trials Keras Tuner ran, imported: Optuna samples nothing in it.
    return make_sampler(run.sampler, seed=run.seed) if run.engine == "optuna" else optuna.samplers.RandomSampler()


def _pruner(run: Run):
    import optuna

    if run.engine != "optuna":
        return optuna.pruners.NopPruner()
    max_steps, warmup = pruning_schedule(run)
    return make_pruner(run.pruner, max_steps=max_steps, warmup_steps=warmup)


SURPLUS_ATTR = "lepidopt:surplus"


def _counted(trials, states, *, before: int | None = None) -> list:
    """Trials in ``states`` (numbered below ``before``) that count towards the total: not a failed trial
    that was retried (its retry takes its place) and not a surplus trial (started by a worker after the
    total was claimed)."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    return [t for t in trials if t.state in states and t.number not in retried and not t.user_attrs.get(SURPLUS_ATTR)
            and (before is None or t.number < before)]


def count_finished(study) -> int:
    """Finished trials (complete, pruned or failed) towards the study's total."""
    return len(_counted(study.get_trials(deepcopy=False), _finished_states()))


def count_claimed(study, *, before: int | None = None) -> int:
    """Finished and running trials towards the total (only those numbered below ``before``, if given)."""
    import optuna

    return len(_counted(study.get_trials(deepcopy=False), (*_finished_states(), optuna.trial.TrialState.RUNNING),
                        before=before))


def log_trial(study, trial) -> None:
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    reason = trial.user_attrs.get("fail_reason", "")
    log.info("trial %d %s: value %s%s", trial.number, trial.state.name.lower(), value, f" ({reason})" if reason else "")


@dataclasses.dataclass(frozen=True)
class TrialPolicy:
    """How a process runs its trials: checkpoints, and when to give up on a run of failures."""

    checkpoints: bool = True
    head_checkpoint_every: float = 30.0  # seconds; phase 2 saves after every epoch
    max_failures: int = 5  # consecutive failed trials before the process stops

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise SettingError("max_failures", self.max_failures, "must be at least 1.")
        if self.head_checkpoint_every < 0:
            raise SettingError("head_checkpoint_every", self.head_checkpoint_every,
                               "seconds between a head's checkpoints must be 0 (every epoch) or more.")

    def checkpoints_in(self, folder: Path) -> Checkpoints | None:
        """A trial's checkpoints in ``folder``, or None when checkpoints are off."""
        return Checkpoints(folder, head_every=self.head_checkpoint_every) if self.checkpoints else None

    def too_many_failures(self, failures: list[str]) -> TooManyFailures:
        """The error that stops a process after ``failures`` (their reasons) in a row."""
        return TooManyFailures(
            f"stopped after {len(failures)} failed trials in a row; the last failed with: {failures[-1]}. "
            "Fix the cause (see lepidopt status) and run again; finished trials are kept.")


def optimize(run: Run, study, data: StudyData, *, n_trials: int | None, timeout: float | None,
             on_trial: Callable | None = None, policy: TrialPolicy = TrialPolicy()) -> None:
    """Run trials until the study holds ``n_trials`` finished trials in total, or ``timeout`` seconds pass.

    A retried trial (of a dead or interrupted worker) keeps its first run's number for its seed and
    checkpoint folder and resumes from the checkpoint. Raises TooManyFailures after
    ``policy.max_failures`` failed trials in a row, quoting the last reason.
    """
    import optuna

    judge_from = float("inf") if run.pruner == "none" else pruning_schedule(run)[1]
    def objective(trial: optuna.Trial) -> float:
        # At most trial.number trials are numbered below this one, so below the total it cannot be surplus and
        # the study need not be read again (~4 ms at 500 trials).
        if n_trials is not None and trial.number >= n_trials and count_claimed(study, before=trial.number) >= n_trials:
            # Workers that asked at the same moment: the lowest numbers take the last places in the total.
            trial.set_user_attr(SURPLUS_ATTR, True)
            raise optuna.TrialPruned("surplus: the study's total was claimed by other workers; not run")
        root = trial.user_attrs.get("lepidopt:root", trial.number)
        params = suggest(trial, run.space)
        recipe = run.space.recipe(params)
        if run.weights:
            recipe = dataclasses.replace(recipe, weights=run.weights)
        seed = run.seed + root
        checkpoints = policy.checkpoints_in(run.folder / "trials" / str(root))
        saved = checkpoints.latest() if checkpoints else None
        for key, value in identity_attrs(recipe, seed=seed, root=root).items():
            trial.set_user_attr(key, value)
        if "fail_reason" in trial.user_attrs:  # copied from the failed run this trial retries
            trial.set_user_attr("fail_reason", None)
        if saved:
            trial.set_user_attr("resumed_from", saved.position)
            log.info("trial %d resumes trial %d after its %s epoch %d", trial.number, root, saved.phase, saved.epoch)
        try:
            result = run_trial(recipe, data, OptunaReporter(trial, judge_from=judge_from), seed=seed,
                               objective=run.objective, checkpoints=checkpoints)
        except TrialStopped as stop:
            for key, value in outcome_attrs(history=stop.history, timings=stop.timings).items():
                trial.set_user_attr(key, value)
            discard(checkpoints)
            raise optuna.TrialPruned(str(stop)) from None
        except Interrupted as stop:
            trial.set_user_attr("fail_reason", f"interrupted by {stop}")
            stop.trial_number = trial.number
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:2000])
            discard(checkpoints)
            raise
        for key, value in outcome_attrs(history=result.history, timings=result.timings, metrics=result.metrics,
                                        n_train=result.n_train).items():
            trial.set_user_attr(key, value)
        discard(checkpoints)
        return result.value

    failures: list[str] = []
    ran = 0

    def after_trial(study_, trial) -> None:
        nonlocal ran
        ran += 1
        if trial.user_attrs.get(SURPLUS_ATTR):
            log.info("trial %d not run: the study's total is claimed by other workers", trial.number)
            study_.stop()
            return
        log_trial(study_, trial)
        if trial.state == optuna.trial.TrialState.FAIL:
            failures.append(trial.user_attrs.get("fail_reason") or "no reason recorded")
        else:
            failures.clear()
        if len(failures) >= policy.max_failures:
            study_.stop()
        elif n_trials is not None and count_claimed(study_) >= n_trials:
            study_.stop()  # the rest of the total is finished or running in other workers
        if on_trial is not None:
            on_trial(study_, trial)

    deadline = None if timeout is None else time.monotonic() + timeout
    with _optuna_failures_quiet():
        while True:
            ran = 0
            quietly(optuna.storages.fail_stale_trials, study=study)  # a dead worker's trial is no claim on the total
            remaining = None if n_trials is None else n_trials - count_claimed(study)
            left = None if deadline is None else deadline - time.monotonic()
            if (remaining is not None and remaining <= 0) or (left is not None and left <= 0):
                return
            study.optimize(
                objective,
                n_trials=remaining,
                timeout=left,
                callbacks=[after_trial],
                catch=(Exception,),
                gc_after_trial=False,  # every trial starts by clearing the Keras session, which collects
                show_progress_bar=sys.stderr.isatty() and remaining is not None,
            )
            if len(failures) >= policy.max_failures:
                raise policy.too_many_failures(failures)
            if remaining is None or ran < remaining:  # stopped, or out of time: not short of trials because of retries
                return


@contextlib.contextmanager
def _optuna_failures_quiet() -> Iterator[None]:
    """Optuna warns of every failed trial with its traceback; lepidopt logs each trial's outcome and reason in one
    line (log_trial) and an interruption in one line, so Optuna's account is shown with -v only."""
    logger = logging.getLogger("optuna.study._optimize")
    previous = logger.level
    logger.setLevel(logging.NOTSET if log.isEnabledFor(logging.DEBUG) else logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)
