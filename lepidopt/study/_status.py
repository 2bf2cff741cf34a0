"""A study's status: its trials as rows, counted as ``--n-trials`` counts them, its best trial, and the table
``lepidopt status`` prints."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._numbers import whole_number
from ..errors import SettingError
from . import _attrs as attrs
from ._counting import count_finished

if TYPE_CHECKING:
    import optuna

__all__ = ["TrialRow", "StudyStatus", "status_of", "format_status"]


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
    engine_note: str = ""  # what the engine says of its trials, shown under the header


def status_of(optuna_study: Any, folder: Path, *, engine_note: str = "") -> StudyStatus:
    """The study's trials, counted as ``--n-trials`` counts them, its best trial, and ``engine_note``: what the
    engine says of its trials (where they were imported from)."""
    trials = optuna_study.get_trials(deepcopy=False)
    # A retry's history lists every run of its trial before it, the one it retries last.
    retried_as = {t.system_attrs[attrs.RETRY_HISTORY][-1]: t.number for t in trials
                  if t.system_attrs.get(attrs.RETRY_HISTORY)}
    rows = []
    for t in trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        rows.append(TrialRow(number=t.number, state=t.state.name, value=t.value, seconds=seconds, params=dict(t.params),
                             baseline=bool(t.user_attrs.get(attrs.BASELINE)),
                             note=_note(t, retried_as.get(t.number)),
                             epochs=t.user_attrs.get(attrs.KERAS_TUNER_EPOCHS)))
    scored = [(r.value, r) for r in rows if r.state == "COMPLETE" and r.value is not None]
    direction = optuna_study.direction.name.lower()
    best = None
    if scored:
        best = (max if direction == "maximize" else min)(scored, key=lambda entry: entry[0])[1]
    recorded = optuna_study.user_attrs
    return StudyStatus(study=optuna_study.study_name, objective=recorded.get(attrs.OBJECTIVE, "value"),
                       direction=direction, trials=tuple(rows), best=best, folder=folder,
                       engine=recorded.get(attrs.ENGINE, "optuna"), engine_note=engine_note,
                       n_finished=count_finished(optuna_study),
                       total=recorded.get(attrs.TOTAL))


def _note(trial: optuna.trial.FrozenTrial, retry: int | None) -> str:
    """What the status table's footnotes say of a trial: why it failed, was retried, not run or ended early, and
    whose head a stage-two trial fine-tunes."""
    state = trial.state.name
    surplus = trial.user_attrs.get(attrs.SURPLUS)
    if surplus:
        why = surplus if isinstance(surplus, str) else "the study's total was claimed by other workers"
        return f"not run: {why} (not counted)"
    if state == "FAIL":
        reason = trial.user_attrs.get(attrs.FAIL_REASON) or "no reason recorded"
        return f"failed: {reason}" + (f"; retried as trial {retry} (not counted)" if retry is not None else "")
    history = trial.system_attrs.get(attrs.RETRY_HISTORY)
    if state in ("WAITING", "RUNNING") and history:
        return f"{state.lower()}: retries trial {history[-1]} from its last checkpoint"
    notes = []
    if trial.user_attrs.get(attrs.STAGE) == 2:
        notes.append(f"stage 2: fine-tunes the head of trial {trial.user_attrs.get(attrs.PARENT)}")
    resumed = trial.user_attrs.get(attrs.RESUMED_FROM)
    if resumed and state in ("COMPLETE", "PRUNED"):
        notes.append(f"resumed trial {trial.user_attrs.get(attrs.ROOT)} after its {resumed['phase']} epoch "
                     f"{resumed['epoch']}")
    if trial.user_attrs.get(attrs.STOP_REASON):
        notes.append(f"ended early: {trial.user_attrs[attrs.STOP_REASON]}")
    return "; ".join(notes)


def format_status(st: StudyStatus, *, last: int | None = None) -> str:
    """The status as ``lepidopt status`` prints it: a table of trials, footnotes and the best trial.

    Args:
        st: The status, from :func:`lepidopt.status`.
        last: Show only the last ``last`` trials.

    Returns:
        The table as text.

    Raises:
        SettingError: ``last`` below 1.
    """
    if last is not None and not whole_number(last, at_least=1):
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
    if st.engine_note:
        lines.append(st.engine_note)
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
