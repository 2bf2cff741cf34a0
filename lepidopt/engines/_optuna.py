"""The Optuna engine: the study's own sampler and pruner choose and stop the recipes, the space's baseline is
enqueued first, and trials run until the study holds the asked-for total of finished trials."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from .._signals import Interrupted, stop_if_signalled
from ..errors import MissingExtraError, SettingError, StudyError, option
from ..runs import Run
from ..spaces import space_from_dict
from ..study import StorageUnavailable, attrs, count_claimed, quietly, retry_trial, without_waiting
from ..trial import Checkpoints, Reporter, StudyData, TrialStopped, discard, run_trial
from ._base import Engine, register
from ._optuna_space import suggest
from ._policy import TrialPolicy
from ._pruning import PRUNERS, make_pruner, pruning_schedule
from ._staged import (PROMOTED_SHARE, STAGE_TWO_LEAST, STAGE_TWO_SHARE, STRATEGIES, check_staged, default_strategy,
                      promote, stage_one_space, stage_two_root, stage_two_space, start_from_parent)
from ._trial_setup import failure_text, set_up_trial, trial_recipe

if TYPE_CHECKING:
    import optuna

__all__ = ["OptunaEngine", "optimize", "make_sampler", "log_trial", "SAMPLERS"]

log = logging.getLogger("lepidopt")
SAMPLERS = ("tpe", "gp", "cmaes", "random", "qmc")  # the default first


class OptunaReporter(Reporter):
    """Reports every epoch; asks the pruner only from ``judge_from`` on, since every pruner made here
    answers no before its warm-up and asking costs a storage round trip.

    While the storage is unreachable the trial trains on: its reports are kept and stored once the storage
    answers, and the pruner is not asked meanwhile. ``deliver()`` stores what is left, waiting for the storage."""

    def __init__(self, trial: optuna.Trial, *, judge_from: float) -> None:
        self.trial = trial
        self.judge_from = judge_from
        self.step = -1
        self.undelivered: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.undelivered.append((value, step))
        self.step = step
        with contextlib.suppress(StorageUnavailable), without_waiting():
            self.deliver()

    def deliver(self) -> None:
        while self.undelivered:
            self.trial.report(*self.undelivered[0])
            self.undelivered.pop(0)

    def should_stop(self) -> bool:
        if self.undelivered or self.step < self.judge_from:
            return False
        try:
            with without_waiting():
                return self.trial.should_prune()
        except StorageUnavailable:
            return False


def make_sampler(name: str | None, *, seed: int) -> Any:
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
            raise MissingExtraError("sampler 'cmaes'", "needs the cmaes package; pip install cmaes.") from None
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise MissingExtraError(
                "sampler 'gp'", "Optuna's GPSampler needs PyTorch; pip install 'lepidopt[gp]'.") from None
        return optuna.samplers.GPSampler(seed=seed)
    raise SettingError("sampler", name, f"must be one of {', '.join(SAMPLERS)}.")


def log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    reason = trial.user_attrs.get(attrs.FAIL_REASON) or ""
    log.info("trial %d %s: value %s%s", trial.number, trial.state.name.lower(), value, f" ({reason})" if reason else "")


def optimize(run: Run, study: optuna.Study, data: StudyData, *, n_trials: int | None, timeout: float | None,
             on_trial: Callable | None = None, policy: TrialPolicy = TrialPolicy()) -> None:
    """Run trials of ``study`` (with the sampler and pruner it has) until it holds ``n_trials`` finished trials in
    total, or ``timeout`` seconds pass.

    A retried trial (of a dead or interrupted worker) keeps its first run's number for its seed and
    checkpoint folder and resumes from the checkpoint. Raises TooManyFailures after
    ``policy.max_failures`` failed trials in a row, quoting the last reason.
    """
    import optuna

    judge_from = float("inf") if run.pruner == "none" else pruning_schedule(run).warmup_steps
    check_staged(run)
    stage_spaces = (stage_one_space(run.space), stage_two_space(run.space)) if run.strategy == "staged" else None

    def objective(trial: optuna.Trial) -> float:
        try:
            try:
                return run_objective(trial)
            except optuna.TrialPruned:
                raise
            except Exception:
                stop_if_signalled()  # the signal's Interrupted swallowed or wrapped on the way
                raise
        except Interrupted as stop:  # anywhere in the trial: after_interrupt enqueues its retry
            if not trial.user_attrs.get(attrs.SURPLUS):
                trial.set_user_attr(attrs.FAIL_REASON, f"interrupted by {stop}")
                # Before its set-up the trial has no root yet; its retry takes the root (seed, checkpoint folder,
                # place in stage two) from it.
                root = trial.user_attrs.get(attrs.ROOT, trial.number)
                trial.set_user_attr(attrs.ROOT, root)
                stop.trial_number = trial.number
                checkpoints = policy.checkpoints_in(run.folder / "trials" / str(root))
                saved = checkpoints.latest() if checkpoints else None
                stop.resumes_at = f"{saved.phase} epoch {saved.epoch}" if saved else None
            raise

    def run_objective(trial: optuna.Trial) -> float:
        # At most trial.number trials are numbered below this one, so below the total it cannot be surplus and
        # the study need not be read again.
        if n_trials is not None and trial.number >= n_trials and count_claimed(study, before=trial.number) >= n_trials:
            # Workers that asked at the same moment: the lowest numbers take the last places in the total.
            trial.set_user_attr(attrs.SURPLUS, True)
            raise optuna.TrialPruned("surplus: the study's total was claimed by other workers; not run")
        root = trial.user_attrs.get(attrs.ROOT, trial.number)
        stage: int | None = None
        space = run.space
        if stage_spaces is not None:
            stage = int(trial.user_attrs.get(attrs.STAGE) or 1)
            space = stage_spaces[stage - 1]
        params = suggest(trial, space)
        seed, copied = None, False
        if stage == 2:
            chain = stage_two_root(study, trial)
            if chain is None:
                trial.set_user_attr(attrs.SURPLUS, attrs.PROMOTED_TWICE)
                raise optuna.TrialPruned(f"surplus: {attrs.PROMOTED_TWICE}; not run")
            root = chain
            seed, copied = start_from_parent(run, study, trial, run.folder / "trials" / str(root))
        setup = set_up_trial(run, trial_recipe(run, params, space), root=root, folder=str(root), policy=policy,
                             seed=seed)
        recorded = dict(setup.attrs)
        if stage is not None:
            recorded[attrs.STAGE] = stage
        if copied:
            recorded.pop(attrs.RESUMED_FROM, None)  # it starts from its parent's head, not from a run of its own
        for key, value in recorded.items():
            trial.set_user_attr(key, value)
        for copied_attr in (attrs.FAIL_REASON, attrs.RESUMED_FROM):  # copied from the failed run this trial retries
            if copied_attr in trial.user_attrs and copied_attr not in recorded:
                trial.set_user_attr(copied_attr, None)
        if copied:
            log.info("trial %d fine-tunes the head of trial %d", trial.number, trial.user_attrs[attrs.PARENT])
        elif setup.saved:
            log.info("trial %d resumes trial %d after its %s epoch %d", trial.number, root, setup.saved.phase,
                     setup.saved.epoch)
        reporter = OptunaReporter(trial, judge_from=judge_from)
        try:
            result = run_trial(setup.recipe, data, reporter, seed=setup.seed, objective=run.objective,
                               checkpoints=setup.checkpoints, keep_head=stage == 1, decode=run.decode)
        except TrialStopped as stop:
            reporter.deliver()
            for key, value in attrs.outcome_attrs(history=stop.history, timings=stop.timings).items():
                trial.set_user_attr(key, value)
            ended[trial.number] = setup.checkpoints
            raise optuna.TrialPruned(str(stop)) from None
        except Exception as exc:
            trial.set_user_attr(attrs.FAIL_REASON, failure_text(exc))
            ended[trial.number] = setup.checkpoints
            raise
        reporter.deliver()
        for key, value in attrs.outcome_attrs(history=result.history, timings=result.timings, metrics=result.metrics,
                                              n_train=result.n_train, stop_reason=result.stop_reason).items():
            trial.set_user_attr(key, value)
        if stage != 1:  # a finished head is kept for its stage two
            ended[trial.number] = setup.checkpoints
        return result.value

    failures: list[str] = []
    ran = 0
    # Checkpoints of trials that ended, removed once their end is stored: a worker killed in between leaves its
    # trial running, to be retried from them.
    ended: dict[int, Checkpoints | None] = {}

    def after_trial(study_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal ran
        ran += 1
        discard(ended.pop(trial.number, None))
        if trial.user_attrs.get(attrs.SURPLUS) == attrs.PROMOTED_TWICE:
            log.info("trial %d not run: %s", trial.number, attrs.PROMOTED_TWICE)
            return
        if trial.user_attrs.get(attrs.SURPLUS):
            log.info("trial %d not run: the study's total is claimed by other workers", trial.number)
            study_.stop()
            return
        log_trial(study_, trial)
        if trial.state == optuna.trial.TrialState.FAIL:
            failures.append(trial.user_attrs.get(attrs.FAIL_REASON) or "no reason recorded")
        else:
            failures.clear()
        if trial.state == optuna.trial.TrialState.COMPLETE and trial.user_attrs.get(attrs.STAGE) == 1:
            promote(run, study_, n_trials=n_trials)
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
            clear_ended_checkpoints(run, study)
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


def clear_ended_checkpoints(run: Run, study: optuna.Study) -> None:
    """Remove the checkpoints of trials whose end was stored by a worker that died before removing them (a
    completed stage-one head keeps its checkpoint for its stage two)."""
    import optuna

    folder = run.folder / "trials"
    if not folder.is_dir():
        return
    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    live = {attrs.root_of(t) for t in trials if t.state in (state.RUNNING, state.WAITING)}
    ended = {attrs.root_of(t) for t in trials
             if t.state == state.PRUNED or (t.state == state.COMPLETE and t.user_attrs.get(attrs.STAGE) != 1)}
    for path in folder.iterdir():
        if path.name.isdigit() and int(path.name) in ended - live:
            discard(Checkpoints(path))


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


@register
class OptunaEngine(Engine):
    """Optuna's sampler and pruner over the study (TPE and the median pruner by default); trials of dead or
    interrupted workers are retried from their checkpoints."""

    name = "optuna"
    recycles = True

    def settle(self, settings: dict[str, Any], given: Mapping[str, Any]) -> None:
        if settings["tuner"] is not None:
            raise SettingError("tuner", settings["tuner"], "is a Keras Tuner setting; add "
                               f"{option('engine', 'keras-tuner')}, or choose Optuna's {option('sampler')} and "
                               f"{option('pruner')} instead.")
        settings["sampler"] = settings["sampler"] or SAMPLERS[0]
        settings["pruner"] = settings["pruner"] or PRUNERS[0]
        if settings["sampler"] not in SAMPLERS:
            raise SettingError("sampler", settings["sampler"], f"must be one of {', '.join(SAMPLERS)}.")
        if settings["pruner"] not in PRUNERS:
            raise SettingError("pruner", settings["pruner"], f"must be one of {', '.join(PRUNERS)}.")
        if settings["strategy"] is None:
            settings["strategy"] = default_strategy(space_from_dict(settings["space"], source="run.yaml space"))
        if settings["strategy"] not in STRATEGIES:
            raise SettingError("strategy", settings["strategy"], f"must be one of {', '.join(STRATEGIES)}.")

    def check(self, run: Run) -> None:
        _sampler(run)
        _pruner(run)
        check_staged(run)

    def status_note(self, run: Run) -> str:
        if run.strategy != "staged":
            return ""
        return (f"strategy staged: stage-1 trials train heads on cached features; the top {PROMOTED_SHARE:.0%} of "
                f"finished heads go on to a stage-2 trial that fine-tunes them, while stage 2 has had at most "
                f"{STAGE_TWO_SHARE:.0%} of the time, less while its trials end no better than their heads (at least "
                f"{STAGE_TWO_LEAST:.0%})")

    def initialize(self, study: Any, run: Run) -> None:
        super().initialize(study, run)
        if run.space.baseline:
            study.enqueue_trial(dict(run.space.baseline), user_attrs={attrs.BASELINE: True})

    def join(self, run: Run, role: Any) -> None:
        if role is not None:
            raise StudyError(f"study {run.study!r}", f"its engine is {run.engine}; {option('tuner_id')}, "
                             f"{option('oracle_ip')} and {option('oracle_port')} are for Keras Tuner studies.",
                             fix="Drop them.")

    def run_trials(self, run: Run, study: Any, data: StudyData, *, n_trials: int | None, timeout: float | None,
                   policy: TrialPolicy, on_trial: Callable[[Any, Any], None] | None = None,
                   sampler_seed: int | None = None) -> None:
        study.sampler, study.pruner = _sampler(run, seed=sampler_seed), _pruner(run)
        optimize(run, study, data, n_trials=n_trials, timeout=timeout, policy=policy, on_trial=on_trial)

    def after_interrupt(self, study: Any, stop: Interrupted, *, retries: int) -> str:
        number = stop.trial_number
        if number is None:
            return ""
        retry_trial(study, number, retries=retries)
        if stop.resumes_at is None:
            return f"trial {number} will be retried from its start (it had saved no checkpoint); "
        return f"trial {number} will be retried from its checkpoint after {stop.resumes_at}; "


def _sampler(run: Run, *, seed: int | None = None) -> Any:
    """The run's sampler, seeded with ``seed`` (default: the run's)."""
    return make_sampler(run.sampler, seed=run.seed if seed is None else seed)


def _pruner(run: Run) -> Any:
    schedule = pruning_schedule(run)
    return make_pruner(run.pruner, max_steps=schedule.max_steps, warmup_steps=schedule.warmup_steps,
                       startup_trials=schedule.startup_trials)
