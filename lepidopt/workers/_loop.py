"""Running a study's trials in a worker: the loop behind ``lepidopt search`` and ``lepidopt worker``.

A worker joins a study on a storage and reads everything else (data, space, settings, the folder of
the split and the feature cache) from the study itself. Many workers on many machines share one
study through PostgreSQL or MySQL (or SQLite on one machine); each trial records the host and pid
that ran it. SIGTERM or SIGINT stops a worker within moments: its trial is failed with the reason
and enqueued again, to resume from its last checkpoint, and the worker exits with 128 + the signal
number (143 for SIGTERM, 130 for SIGINT).
"""

from __future__ import annotations

from typing import Any, Callable

from ..engines import get_engine
from ..runs import Run
from ..study import count_finished
from ..trial import StudyData
from ._in_process import interruptible, run_in_process
from ._processes import run_in_processes
from ._settings import WorkerSettings

__all__ = ["run_trials"]


def run_trials(run: Run, study: Any, *, n_trials: int | None, timeout: float | None, settings: WorkerSettings,
               data: StudyData | None = None, on_trial: Callable[[Any, Any], None] | None = None,
               first: bool = False) -> None:
    """Trials of ``study`` in this process (or in recycled child processes) until its total or the timeout;
    raises WorkerInterrupted after a SIGTERM or SIGINT, with the interrupted trial enqueued again. ``data``:
    the study's data if this process has it already (else it is built from the run). ``first``: this process
    created the study and runs its trials alone so far, so it draws recipes with the study's seed, and a
    search run alone is repeatable; every other process (a worker, a resumed search, a recycled trial
    process) draws them with a seed of its own."""
    if not settings.recycling.enabled:
        run_in_process(run, study, n_trials=n_trials, timeout=timeout, settings=settings, data=data,
                       on_trial=on_trial, own_seed=not first)
        return
    with interruptible(get_engine(run.engine), study, retries=settings.heartbeat.retries):
        run_in_processes(run, n_trials=n_trials, timeout=timeout, settings=settings,
                         finished=lambda: n_trials is not None and count_finished(study) >= n_trials)
