"""The functions behind the commands, for notebooks and scripts alike: ``search``, ``worker``, ``recover`` and
``status`` are defined here; ``export_best``, ``report_study``, ``report_embeddings`` and ``serve_dashboard``
come from ``lepidopt.results``."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from ._signals import Interrupted
from .data import DataSpec
from .engines import KerasTunerRole, TrialPolicy, get_engine
from .errors import SettingError, StudyError, WorkerInterrupted
from .results import ClusteringSettings, export_best, report_embeddings, report_study, serve_dashboard
from .runs import Run, read_run, resolve_run, study_dir
from .study import (Heartbeat, StudyStatus, attrs, check_storage_url, count_finished, create_study, creation_lock,
                    format_status, open_study, resume_study, retry_trial, status_of)
from .trial import objective_direction, study_data
from .workers import recycling, run_trials

__all__ = ["search", "worker", "recover", "status", "format_status", "export_best", "report_study",
           "report_embeddings", "serve_dashboard", "SearchSummary", "WorkerSummary", "RecoverSummary", "StudyStatus",
           "Heartbeat", "TrialPolicy", "KerasTunerRole", "ClusteringSettings"]

log = logging.getLogger("lepidopt")


@dataclasses.dataclass(frozen=True)
class SearchSummary:
    run: Run
    status: StudyStatus
    seconds: float


def search(*, study: str, data: DataSpec | str | None = None, space: str | None = None,
           results_dir: str | Path = "results", n_trials: int | None = None, timeout: float | None = None,
           storage: str | None = None, sampler: str | None = None, pruner: str | None = None,
           seed: int | None = None, objective: str | None = None, weights: str | None = None,
           augment_views: int | None = None, feature_cache: bool | None = None,
           feature_cache_limit: str | int | None = None, engine: str | None = None, tuner: str | None = None,
           max_trials_per_process: int | None = None, max_rss: str | int | None = None,
           heartbeat: Heartbeat = Heartbeat(), policy: TrialPolicy = TrialPolicy(),
           create_only: bool = False) -> SearchSummary:
    """Create or resume ``study`` and run trials until it holds ``n_trials`` finished trials in total.

    A new study needs ``data`` (a folder, ETHEC .json or .csv path, or a DataSpec) and ``space`` (a
    built-in name or a YAML path); a resumed one reads them from its run.yaml, and its storage must hold
    it. ``n_trials`` counts the study's finished trials (complete, pruned or failed), so running again
    stops where one uninterrupted run would have. A creation that fails or is interrupted leaves nothing
    behind.

    ``engine`` is 'optuna' (the default: ``sampler`` and ``pruner``) or 'keras-tuner' (``tuner``: hyperband,
    the default, bayesian, random or grid), over the same space, trials and objective; a Keras Tuner
    study keeps its project in the study's folder and imports every finished trial into its storage.

    Study settings, kept in run.yaml: ``feature_cache=False`` recomputes backbone features in every trial
    instead of sharing them; ``augment_views`` (default 4) is how many augmented feature passes the cache
    keeps per augmentation strength; ``feature_cache_limit`` caps the cache folder ('50GB'; it may change
    on a resume). Options left as None keep the study's value (or the default, for a new study).

    Process settings: with ``max_trials_per_process`` or ``max_rss`` ('6GB') trials run in worker
    processes that are replaced after that many trials or above that resident memory; ``heartbeat``
    (RDB storages) fails and retries the trials of dead workers; ``policy`` sets checkpoints and how many
    failed trials in a row stop the search. With ``create_only`` the study is made (split, run.yaml,
    storage, its total) and no trial runs: start workers with ``worker()`` / ``lepidopt worker``. Returns
    the study's status after the run.
    """
    check_limits(n_trials=n_trials, timeout=timeout)
    started = time.perf_counter()
    with creation_lock(study_dir(results_dir, study)):  # the same command started twice creates the study once
        run = resolve_run(study=study, results_dir=results_dir, data=data, space=space, storage=storage,
                          sampler=sampler, pruner=pruner, seed=seed, objective=objective, weights=weights,
                          augment_views=augment_views, feature_cache=feature_cache,
                          feature_cache_limit=feature_cache_limit, engine=engine, tuner=tuner)
        objective_direction(run.objective)
        get_engine(run.engine).check(run)
        processes = recycling(run, max_trials_per_process=max_trials_per_process, max_rss=max_rss)
        # A bad URL or an unreachable server fails before the scan; a local file is created only after it.
        check_storage_url(run.storage, own_folder=run.folder)
        _check_weights(run)
        optuna_study, data = _create_or_resume(run, heartbeat=heartbeat, n_trials=n_trials)
    n_trials = n_trials if n_trials is not None else optuna_study.user_attrs.get(attrs.TOTAL)
    if create_only:
        log.info("start workers with: lepidopt worker --study %s --storage URL", study)
        return SearchSummary(run=run, status=_status_of(optuna_study, run),
                             seconds=time.perf_counter() - started)
    finished = count_finished(optuna_study)
    if n_trials is not None and finished >= n_trials:
        log.info("study %r already holds %d finished trials (asked for %d): nothing to run", study, finished, n_trials)
    else:
        log.info("study %r: %d finished trials so far, running until %s", study, finished,
                 f"{n_trials} in total" if n_trials else "stopped" if not timeout else f"{timeout:.0f} s pass")
    data = study_data(run) if data is None else data  # checked here, before any trial process starts
    run_trials(run, optuna_study, n_trials=n_trials, timeout=timeout, recycling=processes, policy=policy,
               heartbeat=heartbeat, data=None if processes.enabled else data)
    return SearchSummary(run=run, status=_status_of(optuna_study, run), seconds=time.perf_counter() - started)


def _create_or_resume(run: Run, *, heartbeat: Heartbeat, n_trials: int | None):
    """(the study, its data when read already) for a new study, created, or an existing one, resumed."""
    if read_run(run.folder) is not None:
        return resume_study(run, heartbeat=heartbeat, n_trials=n_trials)
    try:
        created = create_study(run, initialize=get_engine(run.engine).initialize, heartbeat=heartbeat,
                               n_trials=n_trials)
    except Interrupted as stop:
        raise WorkerInterrupted(f"interrupted by {stop} while creating study {run.study!r}: nothing of it was kept; "
                                "run the same command again to create it.", signal_number=stop.signal_number) from None
    log.info("study %r created in %s", run.study, run.folder)
    return created, None


def _check_weights(run: Run) -> None:
    """Fail before any trial when no trial could load its backbone weights (a missing file, no internet)."""
    weights = run.weights or run.space.recipe({}).weights
    if weights == "none" or "weights" in {p.name for p in run.space.params}:
        return
    from .model import build_backbone

    build_backbone(weights=weights, image_size=32)


def status(*, study: str, storage: str | None = None, results_dir: str | Path | None = None) -> StudyStatus:
    """The trials of ``study`` and its best trial, read from its storage (``storage``, or the one in its
    run.yaml under ``results_dir``)."""
    opened = open_study(study=study, storage=storage, results_dir=results_dir)
    return _status_of(opened.study, opened.run)


def _status_of(optuna_study: Any, run: Run) -> StudyStatus:
    return status_of(optuna_study, run.folder, engine_note=get_engine(run.engine).status_note(run))


@dataclasses.dataclass(frozen=True)
class WorkerSummary:
    run: Run
    ran: int  # trials this worker finished
    finished: int  # the study's finished trials afterwards
    seconds: float


def worker(*, study: str, storage: str | None = None, results_dir: str | Path | None = None,
           n_trials: int | None = None, timeout: float | None = None, heartbeat: Heartbeat = Heartbeat(),
           policy: TrialPolicy = TrialPolicy(), max_trials_per_process: int | None = None,
           max_rss: str | int | None = None, engine: str | None = None,
           keras_tuner: KerasTunerRole | None = None) -> WorkerSummary:
    """Join an existing study and run its trials until its total (recorded when it was created, or
    ``n_trials``) or ``timeout``. ``storage``: the study's storage URL (default: the one in
    ``results_dir/study/run.yaml``). ``results_dir``: where the study's folder is mounted on this machine, if
    not where it was created. ``engine``, when given, must be the study's. The data, space and every setting
    that defines how trials train are the study's own.

    A study whose engine is Keras Tuner runs distributed the Keras Tuner way: one worker with tuner id
    'chief' serves the oracle, the others (tuner ids tuner0, tuner1, ...) ask it for trials; ``keras_tuner``
    gives this worker's role, else it is read from KERASTUNER_TUNER_ID, _ORACLE_IP and _ORACLE_PORT."""

    started = time.perf_counter()
    check_limits(n_trials=n_trials, timeout=timeout)
    opened = open_study(study=study, storage=storage, results_dir=results_dir, heartbeat=heartbeat)
    run = opened.run
    if engine is not None and engine != run.engine:
        raise StudyError(f"study {study!r}: its engine is {run.engine}, not {engine}; drop --engine or give "
                         f"--engine {run.engine}.")
    get_engine(run.engine).join(run, keras_tuner)
    if not (run.folder / "split.json").exists():
        raise StudyError(
            f"study {study!r}: its folder {str(run.folder)!r} has no split.json. Workers need the study's folder "
            "(split, feature cache, checkpoints) on a filesystem every machine shares; pass --results-dir with the "
            "folder's parent as mounted here.")
    processes = recycling(run, max_trials_per_process=max_trials_per_process, max_rss=max_rss)
    data = study_data(run)  # checked here, before any trial process starts
    optuna_study = opened.study
    total = n_trials if n_trials is not None else optuna_study.user_attrs.get(attrs.TOTAL)
    before = count_finished(optuna_study)
    log.info("worker %s:%d joins study %r: %d finished trials, running until %s", socket.gethostname(), os.getpid(),
             study, before, f"{total} in total" if total else "stopped")
    run_trials(run, optuna_study, n_trials=total, timeout=timeout, data=None if processes.enabled else data,
               recycling=processes, policy=policy, heartbeat=heartbeat)
    mine = [t for t in optuna_study.get_trials(deepcopy=False)
            if t.user_attrs.get(attrs.WORKER, {}).get("pid") == os.getpid() and t.state.is_finished()]
    return WorkerSummary(run=run, ran=len(mine), finished=count_finished(optuna_study),
                         seconds=time.perf_counter() - started)


def check_limits(*, n_trials: int | None, timeout: float | None) -> None:
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise SettingError("n_trials", n_trials, "must be a whole number of at least 1 (the study's total of finished "
                           "trials).")
    if timeout is not None and not timeout > 0:
        raise SettingError("timeout", timeout, "must be a positive number of seconds.")


@dataclasses.dataclass(frozen=True)
class RecoverSummary:
    retried: tuple[int, ...]  # trials failed and enqueued again
    left: tuple[int, ...]  # running trials left alone: their worker is alive on this machine


def recover(*, study: str, storage: str | None = None, results_dir: str | Path | None = None, retries: int = 3,
            force: bool = False) -> RecoverSummary:
    """The manual step for storages without a heartbeat (journal files), after a worker died: fail the
    study's running trials and enqueue each again, to resume from its checkpoint. A trial whose worker
    is still alive on this machine is left alone; trials of other machines are recovered only with
    ``force`` (make sure no worker runs there). ``storage`` defaults to the one in the study's run.yaml."""
    import optuna

    if retries < 0:
        raise SettingError("retries", retries, "must be 0 or more.")
    optuna_study = open_study(study=study, storage=storage, results_dir=results_dir).study
    here = socket.gethostname()
    retried, left = [], []
    for trial in optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = trial.user_attrs.get(attrs.WORKER, {})
        alive = owner.get("host") == here and _alive(owner.get("pid"))
        elsewhere = owner.get("host") not in (None, here)
        if alive or (elsewhere and not force):
            left.append(trial.number)
            continue
        optuna_study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        retry_trial(optuna_study, trial.number, retries=retries)
        retried.append(trial.number)
    return RecoverSummary(retried=tuple(retried), left=tuple(left))


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
