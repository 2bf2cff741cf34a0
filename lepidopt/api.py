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
from ._numbers import whole_number
from .data import DataSpec
from .engines import KerasTunerRole, TrialPolicy, get_engine
from .errors import SettingError, StudyError, WorkerInterrupted, command, option, rendered
from .results import ClusteringSettings, export_best, report_embeddings, report_study, serve_dashboard
from .predictor import (Predictor, check_embedding_settings, check_prediction_settings, items_of, labelled_items,
                        load_model, write_embeddings, write_predictions)
from .resolve import resolve_run
from .runs import Run, read_run, study_dir
from .study import (Heartbeat, StudyStatus, attrs, check_storage_url, count_finished, create_study, creation_lock,
                    format_status, open_study, resume_study, retry_trial, serve_proxy, status_of)
from .trial import StudyData, study_data
from .workers import Recycling, WorkerSettings, check_recycling, run_trials

__all__ = ["search", "worker", "recover", "storage_proxy", "status", "format_status", "export_best", "report_study",
           "report_embeddings", "serve_dashboard", "SearchSummary", "WorkerSummary", "RecoverSummary", "StudyStatus",
           "WorkerSettings", "Recycling", "Heartbeat", "TrialPolicy", "KerasTunerRole", "ClusteringSettings",
           "load_model", "Predictor", "items_of", "labelled_items", "write_predictions", "write_embeddings",
           "check_prediction_settings", "check_embedding_settings"]

log = logging.getLogger("lepidopt")


@dataclasses.dataclass(frozen=True)
class SearchSummary:
    run: Run
    status: StudyStatus
    seconds: float


def search(*, study: str, data: DataSpec | str | None = None, space: str | None = None,
           results_dir: str | Path = "results", n_trials: int | None = None, timeout: float | None = None,
           storage: str | None = None, sampler: str | None = None, pruner: str | None = None,
           strategy: str | None = None, seed: int | None = None, objective: str | None = None,
           weights: str | None = None,
           augment_views: int | None = None, feature_cache: bool | None = None,
           feature_cache_limit: str | int | None = None, engine: str | None = None, tuner: str | None = None,
           workers: WorkerSettings = WorkerSettings(), create_only: bool = False,
           decode: str | None = None) -> SearchSummary:
    """Create or resume ``study`` and run trials until it holds ``n_trials`` finished trials in total.

    A new study needs ``data`` and ``space``; a resumed one reads them from its run.yaml, and its storage
    must hold it. A creation that fails or is interrupted leaves nothing behind. Options left as None keep
    the study's value (or the default, for a new study); those that define the study cannot change.

    Args:
        study: The study's name, also its folder under ``results_dir``.
        data: A folder, an ETHEC .json or a .csv manifest, or a :class:`~lepidopt.data.DataSpec`.
        space: A built-in space name or a YAML file.
        results_dir: Where the study's folder is.
        n_trials: The study's total of finished trials (complete, pruned or failed), so running again stops
            where one uninterrupted run would have; default: the total it was created with.
        timeout: Seconds after which no further trial starts.
        storage: ``sqlite:///PATH``, ``postgresql://...``, ``mysql://...`` or ``journal:PATH``; default
            SQLite in the study's folder.
        sampler: Optuna's sampler: tpe (default), gp, cmaes, random or qmc.
        pruner: Optuna's pruner: median (default), hyperband, sh or none. The median and successive-halving
            pruners judge a head epoch against head epochs and a fine-tuning epoch against fine-tuning epochs at
            the same unfreeze depth.
        strategy: ``staged``: trials train heads on cached features, and the top quarter of heads goes on to a
            trial that fine-tunes it, searching the unfreeze depth and fine-tuning learning rate, while those
            trials have had at most half the machine time, less while they end no better than their heads (at
            least a tenth); the default
            for a space that searches whether to fine-tune (``finetune.unfreeze`` with ``none`` among its
            choices). ``joint``: every trial samples a whole recipe; the default for any other space. Optuna
            only; defines the study.
        seed: Seeds the split, the sampler and every trial.
        objective: The validation metric to optimise: balanced_accuracy (default), accuracy, macro_f1 or loss; on
            data with taxonomy levels also a level's (``species.balanced_accuracy``), the levels' mean
            (``mean.macro_f1``, which the plain names also mean there), ``tree.consistent_share`` or
            ``tree.hierarchical_distance``.
        weights: Backbone weights for every trial (imagenet, none or a local file), over the space's.
        augment_views: Augmented feature passes the cache keeps per augmentation strength (default 4).
        feature_cache: False recomputes backbone features in every trial instead of sharing them.
        feature_cache_limit: The cache folder's size limit, such as '50GB'; it may change on a resume.
        engine: ``optuna`` (default) or ``keras-tuner``, as registered in :mod:`lepidopt.engines`.
        tuner: Keras Tuner's oracle: hyperband (default), bayesian, random or grid.
        workers: How trials run in this process: recycled processes, heartbeat, checkpoints and failures.
        create_only: Make the study (split, run.yaml, storage, its total) and run no trial; start workers
            with :func:`worker`.
        decode: On data with taxonomy levels: ``independent`` (default; each level's most probable class) or
            ``consistent`` (the most probable path of the tree); it defines the study.

    Returns:
        The run as resolved, the study's status after the run, and the seconds it took.

    Raises:
        SettingError: A value an option cannot take.
        StudyError: A new study without data or space, an option that would change what defines an
            existing study, or a storage that holds another study of that name.
        StorageError: A storage URL that is malformed or cannot be reached.
        DataError: Data that cannot be read or split.
        SpaceError: A space that breaks a rule of the space format.
        MissingExtraError: A sampler or storage whose optional dependency is not installed.
        TooManyFailures: ``workers.policy.max_failures`` failed trials in a row.
        WorkerInterrupted: SIGTERM or SIGINT; the interrupted trial is left to be retried.
    """
    check_limits(n_trials=n_trials, timeout=timeout)
    started = time.perf_counter()
    with creation_lock(study_dir(results_dir, study)):  # the same command started twice creates the study once
        run = resolve_run(study=study, results_dir=results_dir, data=data, space=space, storage=storage,
                          sampler=sampler, pruner=pruner, strategy=strategy, seed=seed, objective=objective,
                          weights=weights,
                          augment_views=augment_views, feature_cache=feature_cache,
                          feature_cache_limit=feature_cache_limit, engine=engine, tuner=tuner, decode=decode)
        get_engine(run.engine).check(run)
        check_recycling(run, workers.recycling)
        # A bad URL or an unreachable server fails before the scan; a local file is created only after it.
        check_storage_url(run.storage, own_folder=run.folder)
        _check_weights(run)
        optuna_study, resumed_data = _create_or_resume(run, heartbeat=workers.heartbeat, n_trials=n_trials)
    n_trials = n_trials if n_trials is not None else optuna_study.user_attrs.get(attrs.TOTAL)
    if create_only:
        log.info(rendered(f"study %r is ready: start workers with {command('worker', 'study', 'storage')}"), study)
        return SearchSummary(run=run, status=_status_of(optuna_study, run),
                             seconds=time.perf_counter() - started)
    finished = count_finished(optuna_study)
    if n_trials is not None and finished >= n_trials:
        log.info("study %r already holds %d finished trials (asked for %d): nothing to run", study, finished, n_trials)
    else:
        log.info("study %r: %d finished trials so far, running until %s", study, finished,
                 f"{n_trials} in total" if n_trials else "stopped" if not timeout else f"{timeout:.0f} s pass")
    checked = study_data(run) if resumed_data is None else resumed_data  # before any trial process starts
    run_trials(run, optuna_study, n_trials=n_trials, timeout=timeout, settings=workers,
               data=None if workers.recycling.enabled else checked, first=resumed_data is None)
    return SearchSummary(run=run, status=_status_of(optuna_study, run), seconds=time.perf_counter() - started)


def _create_or_resume(run: Run, *, heartbeat: Heartbeat, n_trials: int | None) -> tuple[Any, StudyData | None]:
    """(the study, its data when read already) for a new study, created, or an existing one, resumed."""
    if read_run(run.folder) is not None:
        return resume_study(run, heartbeat=heartbeat, n_trials=n_trials)
    try:
        created = create_study(run, initialize=get_engine(run.engine).initialize, heartbeat=heartbeat,
                               n_trials=n_trials)
    except Interrupted as stop:
        raise WorkerInterrupted(f"interrupted by {stop} while creating study {run.study!r}",
                                "nothing of it was kept; run the same command again to create it.",
                                signal_number=stop.signal_number) from None
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
    """The trials of ``study`` and its best trial, counted as ``n_trials`` counts them.

    Args:
        study: The study's name.
        storage: The study's storage URL; default: the one in ``results_dir/study/run.yaml``.
        results_dir: Where the study's folder is (default ``results``).

    Returns:
        The study's trials as rows, its best trial, its objective, engine and total.

    Raises:
        StudyError: The storage does not hold the study, or there is no run.yaml to find its storage.
        StorageError: A storage URL that is malformed or cannot be reached.
    """
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
           n_trials: int | None = None, timeout: float | None = None, workers: WorkerSettings = WorkerSettings(),
           engine: str | None = None, keras_tuner: KerasTunerRole | None = None) -> WorkerSummary:
    """Join an existing study and run its trials until its total or ``timeout``.

    The data, space and every setting that defines how trials train are the study's own. A study whose
    engine is Keras Tuner runs distributed the Keras Tuner way: one worker with tuner id 'chief' serves the
    oracle, the others (tuner ids tuner0, tuner1, ...) ask it for trials.

    Args:
        study: The study's name.
        storage: The study's storage URL; default: the one in ``results_dir/study/run.yaml``.
        results_dir: Where the study's folder is mounted on this machine, if not where it was created.
        n_trials: The study's total of finished trials; default: the total it was created with.
        timeout: Seconds after which no further trial starts.
        workers: How trials run in this process: recycled processes, heartbeat, checkpoints and failures.
        engine: When given, must be the study's engine.
        keras_tuner: This worker's role in a Keras Tuner study; default: read from KERASTUNER_TUNER_ID,
            KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT.

    Returns:
        The run as the study records it, the trials this worker finished, the study's finished trials
        afterwards and the seconds it took.

    Raises:
        StudyError: The storage does not hold the study, its folder has no split.json here, or ``engine``
            or ``keras_tuner`` do not fit the study.
        StorageError: A storage URL that is malformed or cannot be reached.
        SettingError: A value an option cannot take.
        TooManyFailures: ``workers.policy.max_failures`` failed trials in a row.
        WorkerInterrupted: SIGTERM or SIGINT; the interrupted trial is left to be retried.
    """
    started = time.perf_counter()
    check_limits(n_trials=n_trials, timeout=timeout)
    opened = open_study(study=study, storage=storage, results_dir=results_dir, heartbeat=workers.heartbeat)
    run = opened.run
    if engine is not None and engine != run.engine:
        raise StudyError(f"study {study!r}", f"its engine is {run.engine}, not {engine}; drop {option('engine')} or "
                         f"give {option('engine', run.engine)}.")
    get_engine(run.engine).join(run, keras_tuner)
    if not (run.folder / "split.json").exists():
        raise StudyError(
            f"study {study!r}", f"its folder {str(run.folder)!r} has no split.json.",
            fix="Workers need the study's folder (split, feature cache, checkpoints) on a filesystem every machine "
                f"shares; pass {option('results_dir')} with the folder's parent as mounted here.")
    check_recycling(run, workers.recycling)
    data = study_data(run)  # checked here, before any trial process starts
    optuna_study = opened.study
    total = n_trials if n_trials is not None else optuna_study.user_attrs.get(attrs.TOTAL)
    before = count_finished(optuna_study)
    log.info("worker %s:%d joins study %r: %d finished trials, running until %s", socket.gethostname(), os.getpid(),
             study, before, f"{total} in total" if total else "stopped")
    run_trials(run, optuna_study, n_trials=total, timeout=timeout, settings=workers,
               data=None if workers.recycling.enabled else data)
    mine = [t for t in optuna_study.get_trials(deepcopy=False)
            if t.user_attrs.get(attrs.WORKER, {}).get("pid") == os.getpid() and t.state.is_finished()]
    return WorkerSummary(run=run, ran=len(mine), finished=count_finished(optuna_study),
                         seconds=time.perf_counter() - started)


def check_limits(*, n_trials: int | None, timeout: float | None) -> None:
    """A study's total and a timeout, as search and worker take them."""
    if n_trials is not None and not whole_number(n_trials, at_least=1):
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
    study's running trials and enqueue each again, to resume from its checkpoint.

    Args:
        study: The study's name.
        storage: The study's storage URL; default: the one in its run.yaml.
        results_dir: Where the study's folder is, if not where it was created.
        retries: The most retries of one trial.
        force: Also recover trials that workers on other machines are running (make sure none runs there);
            a trial whose worker is alive on this machine is always left alone.

    Returns:
        The trials failed and enqueued again, and the running trials left alone.

    Raises:
        SettingError: ``retries`` below 0.
        StudyError: The storage does not hold the study.
    """
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


def storage_proxy(*, storage: str, host: str = "localhost", port: int = 13000, threads: int = 10,
                  on_ready: Any = None) -> None:
    """Serve Optuna's gRPC storage proxy in front of the database at ``storage`` until SIGTERM or SIGINT, for many
    workers: they give ``--storage grpc://HOST:PORT``, record their trials' heartbeats through it and wait out
    the proxy restarting or its database being unreachable.

    Args:
        storage: The database's URL (PostgreSQL, MySQL or SQLite); its tables are made if missing.
        host: The address to listen on: localhost, or 0.0.0.0 for every interface.
        port: The port to listen on.
        threads: Calls served at once.
        on_ready: Called once the proxy listens.

    Raises:
        SettingError: A journal or gRPC storage, or ``threads`` or ``port`` out of range.
        StorageError: The database cannot be opened, or the port is taken.
    """
    if not 0 < port < 65536:
        raise SettingError("port", port, "must be from 1 to 65535.")
    if threads < 1:
        raise SettingError("threads", threads, "must be at least 1.")
    serve_proxy(check_storage_url(storage), host=host, port=port, threads=threads, on_ready=on_ready)


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
