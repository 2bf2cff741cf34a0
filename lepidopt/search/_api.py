"""The functions behind ``lepidopt search`` and ``lepidopt status``, for notebooks and scripts alike."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from ..data import DataSpec, make_split, read_split, scan_source, write_split
from ..errors import StudyError
from ..runs import Run, resolve_run, study_dir, write_run
from ._keras_tuner_engine import PROJECT
from ._keras_tuner_space import check_keras_tuner_space
from ._optuna_engine import ENGINE_ATTR, SURPLUS_ATTR, TOTAL_ATTR, TrialPolicy, count_finished, create_or_load_study
from ._workers import process_options, run_trials
from ._storage import Heartbeat, check_storage_url, is_local_file_storage, open_storage

__all__ = ["search", "status", "open_study", "SearchSummary", "StudyStatus", "prepare_split", "format_status"]

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

    @property
    def n_finished(self) -> int:
        return sum(t.state in ("COMPLETE", "PRUNED", "FAIL") for t in self.trials)


@dataclasses.dataclass(frozen=True)
class SearchSummary:
    run: Run
    status: StudyStatus
    seconds: float


def prepare_split(run: Run):
    """The study's frozen split: read from split.json, or made from a scan of the data and written once."""
    path = run.folder / "split.json"
    if path.exists():
        return read_split(path)
    scan = scan_source(run.data)
    split = make_split(scan, seed=run.seed, val_fraction=run.val_fraction, test_fraction=run.test_fraction)
    write_split(split, path)
    counts = split.counts()
    log.info(
        "split %d images of %d classes: %d train, %d val, %d test (%d skipped, %d classes dropped) -> %s",
        len(split.paths), len(split.classes), *(sum(counts[s].values()) for s in ("train", "val", "test")),
        len(split.skipped), len(split.dropped_classes), path,
    )
    return split


def search(*, study: str, data: DataSpec | str | None = None, space: str | None = None,
           results_dir: str | Path = "results", n_trials: int | None = None, timeout: float | None = None,
           storage: str | None = None, sampler: str | None = None, pruner: str | None = None,
           seed: int | None = None, objective: str | None = None, weights: str | None = None,
           augment_views: int | None = None, engine: str | None = None, tuner: str | None = None,
           feature_cache: bool = True, feature_cache_limit: str | int = "50GB",
           max_trials_per_process: int | None = None, max_rss: str | int | None = None,
           heartbeat: Heartbeat = Heartbeat(), policy: TrialPolicy = TrialPolicy(),
           create_only: bool = False) -> SearchSummary:
    """Create or resume ``study`` and run trials until it holds ``n_trials`` finished trials in total.

    A new study needs ``data`` (a folder, ETHEC .json or .csv path, or a DataSpec) and ``space`` (a
    built-in name or a YAML path); a resumed one reads them from its run.yaml. ``n_trials`` counts the
    study's finished trials (complete, pruned or failed), so running again stops where one
    uninterrupted run would have.

    ``engine`` is 'optuna' (the default: ``sampler`` and ``pruner``) or 'keras-tuner' (``tuner``: hyperband,
    the default, bayesian, random or grid), over the same space, trials and objective; a Keras Tuner
    study keeps its project in the study's folder and imports every finished trial into its storage.

    Speed and memory: ``feature_cache=False`` recomputes backbone features in every trial instead of
    sharing them; ``augment_views`` (a study setting, default 4) is how many augmented feature passes
    the cache keeps per augmentation strength; ``feature_cache_limit`` caps the cache folder ('50GB').
    With ``max_trials_per_process`` or ``max_rss`` ('6GB') trials run in worker processes that are
    replaced after that many trials or above that resident memory.

    Workers and failures: ``heartbeat`` (RDB storages) fails and retries the trials of dead workers;
    ``policy`` sets checkpoints and how many failed trials in a row stop the search. With
    ``create_only`` the study is made (split, run.yaml, storage, its total) and no trial runs: start
    workers with ``worker()`` / ``lepidopt worker``. Returns the study's status after the run.
    """
    if n_trials is not None and n_trials < 1:
        raise StudyError(f"n_trials {n_trials}: must be at least 1 (it is the study's total of finished trials).")
    if timeout is not None and timeout <= 0:
        raise StudyError(f"timeout {timeout}: must be a positive number of seconds.")
    started = time.perf_counter()
    run = resolve_run(study=study, results_dir=results_dir, data=data, space=space, storage=storage, sampler=sampler,
                      pruner=pruner, seed=seed, objective=objective, weights=weights, augment_views=augment_views,
                      engine=engine, tuner=tuner)
    if run.engine == "keras-tuner":
        check_keras_tuner_space(run.space)
    data_options, recycling = process_options(run, feature_cache=feature_cache, feature_cache_limit=feature_cache_limit,
                                              max_trials_per_process=max_trials_per_process, max_rss=max_rss)
    # A bad URL or an unreachable server fails before the scan; a local file is created only after it.
    check_storage_url(run.storage)
    _check_weights(run)
    storage_ = None if is_local_file_storage(run.storage) else open_storage(run.storage, heartbeat=heartbeat)
    prepare_split(run)
    optuna_study = create_or_load_study(run, storage_ or open_storage(run.storage, heartbeat=heartbeat))
    if n_trials is not None:
        optuna_study.set_user_attr(TOTAL_ATTR, n_trials)
    write_run(run)
    if create_only:
        log.info("study %r created in %s; start workers with: lepidopt worker --study %s --storage URL",
                 study, run.folder, study)
        return SearchSummary(run=run, status=_status_of(optuna_study, run.folder),
                             seconds=time.perf_counter() - started)
    finished = count_finished(optuna_study)
    if n_trials is not None and finished >= n_trials:
        log.info("study %r already holds %d finished trials (asked for %d): nothing to run", study, finished, n_trials)
    else:
        log.info("study %r: %d finished trials so far, running until %s", study, finished,
                 f"{n_trials} in total" if n_trials else "stopped" if not timeout else f"{timeout:.0f} s pass")
    run_trials(run, optuna_study, n_trials=n_trials, timeout=timeout, data_options=data_options, recycling=recycling,
               policy=policy, heartbeat=heartbeat)
    return SearchSummary(run=run, status=_status_of(optuna_study, run.folder), seconds=time.perf_counter() - started)


def _check_weights(run: Run) -> None:
    """Fail before any trial when no trial could load its backbone weights (a missing file, no internet)."""
    weights = run.weights or run.space.recipe({}).weights
    if weights == "none" or "weights" in {p.name for p in run.space.params}:
        return
    from ..model import build_backbone

    build_backbone(weights=weights, image_size=32)


def open_study(*, study: str, storage: str | None = None, results_dir: str | Path = "results"):
    """The existing Optuna study and its opened storage; the storage URL is ``storage`` if given, else the
    one in the study's run.yaml. Every command that reads a study (status, export, report, dashboard)
    comes through here."""
    import optuna

    folder = study_dir(results_dir, study)
    if storage is None:
        if not (folder / "run.yaml").exists():
            raise StudyError(
                f"study {study!r}: no run.yaml in {str(folder)!r}. Check --study and --results-dir, "
                "or pass --storage for a study kept elsewhere."
            )
        storage = resolve_run(study=study, results_dir=results_dir).storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = open_storage(storage)
    try:
        return optuna.load_study(study_name=study, storage=opened), opened
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(opened)]
        raise StudyError(f"study {study!r}: not in that storage; it holds {names or 'no studies'}.") from None


def status(*, study: str, storage: str | None = None, results_dir: str | Path = "results") -> StudyStatus:
    """The trials of ``study`` and its best trial, read from its storage."""
    optuna_study, _ = open_study(study=study, storage=storage, results_dir=results_dir)
    return _status_of(optuna_study, study_dir(results_dir, study))


def _status_of(optuna_study, folder: Path) -> StudyStatus:
    rows = []
    for t in optuna_study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append(TrialRow(number=t.number, state=t.state.name, value=t.value, seconds=seconds, params=dict(t.params),
                             baseline=bool(t.user_attrs.get("lepidopt:baseline")),
                             note=_note(t), epochs=t.user_attrs.get("keras_tuner:epochs")))
    complete = [r for r in rows if r.state == "COMPLETE" and r.value is not None]
    direction = optuna_study.direction.name.lower()
    best = None
    if complete:
        best = (max if direction == "maximize" else min)(complete, key=lambda r: r.value)
    return StudyStatus(study=optuna_study.study_name, objective=optuna_study.user_attrs.get("lepidopt:objective", "value"),
                       direction=direction, trials=tuple(rows), best=best, folder=folder,
                       engine=optuna_study.user_attrs.get(ENGINE_ATTR, "optuna"))


def _note(trial) -> str:
    """Why a trial failed, was retried or not run, for the status table's footnotes."""
    if trial.user_attrs.get(SURPLUS_ATTR):
        return "not run: the study's total was claimed by other workers (not counted)"
    if trial.user_attrs.get("fail_reason"):
        return f"failed: {trial.user_attrs['fail_reason']}"
    resumed = trial.user_attrs.get("resumed_from")
    if resumed:
        return f"resumed trial {trial.user_attrs.get('lepidopt:root')} after its {resumed['phase']} epoch {resumed['epoch']}"
    return ""


def format_status(st: StudyStatus, *, limit: int | None = None) -> str:
    names = sorted({k for t in st.trials for k in t.params})
    budgets = any(t.epochs is not None for t in st.trials)
    header = ["#", "state", st.objective, "seconds"] + ["epochs"] * budgets + names
    table = []
    for t in st.trials[-limit:] if limit else st.trials:
        table.append([f"{t.number}{'*' if t.baseline else ''}", t.state.lower(),
                      "" if t.value is None else f"{t.value:.4f}", "" if t.seconds is None else f"{t.seconds:.1f}"]
                     + [_fmt(t.epochs)] * budgets + [_fmt(t.params.get(n)) for n in names])
    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header))]
    lines = [f"study {st.study}: {len(st.trials)} trials, {st.n_finished} finished; objective {st.objective} ({st.direction})"]
    if st.engine != "optuna":
        lines.append(f"engine {st.engine}: its trials as imported from {st.folder / PROJECT} "
                     "(user attribute keras_tuner:trial_id holds Keras Tuner's trial id)")
    lines.append("")
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + table]
    lines.append("")
    if any(t.baseline for t in st.trials):
        lines.append("* the baseline recipe")
    if budgets:
        lines.append("epochs: the epochs Hyperband gave the trial (its recipe cut to them, head epochs first)")
    for t in st.trials:
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
