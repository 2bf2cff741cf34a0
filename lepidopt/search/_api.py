"""The functions behind ``lepidopt search`` and ``lepidopt status``, for notebooks and scripts alike."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from ..data import DataSpec
from ..errors import SettingError, WorkerInterrupted
from ..runs import Run, read_run, resolve_run, study_dir
from ._creation import create_study, creation_lock, resume_study
from ._keras_tuner_engine import PROJECT
from ._keras_tuner_space import check_keras_tuner_space
from ._metrics import objective_direction
from ._opening import OpenedStudy, open_study
from ._optuna_engine import ENGINE_ATTR, SURPLUS_ATTR, TOTAL_ATTR, TrialPolicy, check_engine, count_finished
from ._signals import Interrupted
from ._storage import Heartbeat, check_storage_url
from ._study_data import study_data
from ._workers import check_limits, recycling, run_trials

__all__ = ["search", "status", "open_study", "OpenedStudy", "SearchSummary", "StudyStatus", "format_status"]

log = logging.getLogger("lepidopt")


@dataclasses.dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    value: float | None
    seconds: float | None
    params: dict[str, Any]
    baseline: bool
    note: str = ""
    epochs: int | None = None  # Keras Tuner Hyperband: the epochs this trial was given


@dataclasses.dataclass(frozen=True)
class StudyStatus:
    study: str
    objective: str
    direction: str
    trials: tuple[TrialRow, ...]
    best: TrialRow | None
    folder: Path
    engine: str = "optuna"
    n_finished: int = 0  # finished trials towards the study's total, counted as --n-trials counts them
    total: int | None = None  # the total asked for, when the study records one


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
        if run.engine == "keras-tuner":
            check_keras_tuner_space(run.space)
        else:
            check_engine(run)
        processes = recycling(run, max_trials_per_process=max_trials_per_process, max_rss=max_rss)
        # A bad URL or an unreachable server fails before the scan; a local file is created only after it.
        check_storage_url(run.storage, own_folder=run.folder)
        _check_weights(run)
        optuna_study, data = _create_or_resume(run, heartbeat=heartbeat, n_trials=n_trials)
    n_trials = n_trials if n_trials is not None else optuna_study.user_attrs.get(TOTAL_ATTR)
    if create_only:
        log.info("start workers with: lepidopt worker --study %s --storage URL", study)
        return SearchSummary(run=run, status=_status_of(optuna_study, run.folder),
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
    return SearchSummary(run=run, status=_status_of(optuna_study, run.folder), seconds=time.perf_counter() - started)


def _create_or_resume(run: Run, *, heartbeat: Heartbeat, n_trials: int | None):
    """(the study, its data when read already) for a new study, created, or an existing one, resumed."""
    if read_run(run.folder) is not None:
        return resume_study(run, heartbeat=heartbeat, n_trials=n_trials)
    try:
        created = create_study(run, heartbeat=heartbeat, n_trials=n_trials)
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
    from ..model import build_backbone

    build_backbone(weights=weights, image_size=32)


def status(*, study: str, storage: str | None = None, results_dir: str | Path | None = None) -> StudyStatus:
    """The trials of ``study`` and its best trial, read from its storage (``storage``, or the one in its
    run.yaml under ``results_dir``)."""
    opened = open_study(study=study, storage=storage, results_dir=results_dir)
    return _status_of(opened.study, opened.run.folder)


def _status_of(optuna_study, folder: Path) -> StudyStatus:
    trials = optuna_study.get_trials(deepcopy=False)
    # A retry's history lists every earlier run of its trial, the one it retries last.
    retried_as = {t.system_attrs["retry_history"][-1]: t.number for t in trials if t.system_attrs.get("retry_history")}
    rows = []
    for t in trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append(TrialRow(number=t.number, state=t.state.name, value=t.value, seconds=seconds, params=dict(t.params),
                             baseline=bool(t.user_attrs.get("lepidopt:baseline")),
                             note=_note(t, retried_as.get(t.number)), epochs=t.user_attrs.get("keras_tuner:epochs")))
    complete = [r for r in rows if r.state == "COMPLETE" and r.value is not None]
    direction = optuna_study.direction.name.lower()
    best = None
    if complete:
        best = (max if direction == "maximize" else min)(complete, key=lambda r: r.value)
    attrs = optuna_study.user_attrs
    return StudyStatus(study=optuna_study.study_name, objective=attrs.get("lepidopt:objective", "value"),
                       direction=direction, trials=tuple(rows), best=best, folder=folder,
                       engine=attrs.get(ENGINE_ATTR, "optuna"), n_finished=count_finished(optuna_study),
                       total=attrs.get(TOTAL_ATTR))


def _note(trial, retry: int | None) -> str:
    """What the status table's footnotes say of a trial: why it failed, was retried or not run."""
    state = trial.state.name
    if trial.user_attrs.get(SURPLUS_ATTR):
        return "not run: the study's total was claimed by other workers (not counted)"
    if state == "FAIL":
        reason = trial.user_attrs.get("fail_reason") or "no reason recorded"
        return f"failed: {reason}" + (f"; retried as trial {retry} (not counted)" if retry is not None else "")
    history = trial.system_attrs.get("retry_history")
    if state in ("WAITING", "RUNNING") and history:
        return f"{state.lower()}: retries trial {history[-1]} from its last checkpoint"
    resumed = trial.user_attrs.get("resumed_from")
    if resumed and state in ("COMPLETE", "PRUNED"):
        return f"resumed trial {trial.user_attrs.get('lepidopt:root')} after its {resumed['phase']} epoch {resumed['epoch']}"
    return ""


def format_status(st: StudyStatus, *, last: int | None = None) -> str:
    """The status as a table, with footnotes and the best trial; ``last``: show only the last N trials."""
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
        raise SettingError("last", last, "must be a whole number of at least 1; leave it out to show every trial.")
    names = sorted({k for t in st.trials for k in t.params})
    budgets = any(t.epochs is not None for t in st.trials)
    header = ["#", "state", st.objective, "seconds"] + ["epochs"] * budgets + names
    shown = st.trials[-last:] if last else st.trials
    table = []
    for t in shown:
        table.append([f"{t.number}{'*' if t.baseline else ''}", t.state.lower(),
                      "" if t.value is None else f"{t.value:.4f}", "" if t.seconds is None else f"{t.seconds:.1f}"]
                     + [_fmt(t.epochs)] * budgets + [_fmt(t.params.get(n)) for n in names])
    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header))]
    total = f" of {st.total}" if st.total else ""
    lines = [f"study {st.study}: {len(st.trials)} trials, {st.n_finished}{total} finished; objective {st.objective} "
             f"({st.direction})"]
    if len(shown) < len(st.trials):
        lines.append(f"showing the last {len(shown)}")
    if st.engine != "optuna":
        lines.append(f"engine {st.engine}: its trials as imported from {st.folder / PROJECT} "
                     "(user attribute keras_tuner:trial_id holds Keras Tuner's trial id)")
    lines.append("")
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + table]
    lines.append("")
    if any(t.baseline for t in shown):
        lines.append("* the baseline recipe")
    if budgets:
        lines.append("epochs: the epochs Hyperband gave the trial (its recipe cut to them, head epochs first)")
    for t in shown:
        if t.note:
            lines.append(f"trial {t.number} {t.note}")
    if st.best is None:
        lines.append("best trial: none yet (no trial has completed)")
    else:
        lines.append(f"best trial: #{st.best.number}, {st.objective} {st.best.value:.4f}")
        lines += [f"  {k}: {_fmt(v)}" for k, v in st.best.params.items()]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
