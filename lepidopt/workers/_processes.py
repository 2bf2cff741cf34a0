"""Trials in worker processes that are replaced after a number of trials or above a resident-memory
threshold, so a long study's memory stays flat whatever TensorFlow keeps.

A worker asks to be replaced only between trials, after the finished trial is stored, so no trial
is lost or run twice; the next worker reads the study from its storage and goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
import sys
import time
from typing import TYPE_CHECKING, Callable, cast

from .._signals import Interrupted
from ..errors import LepidoptError, StorageOutage, StudyError
from ..runs import Run, mask_password
from ..study import load_study, open_storage, outage_error, unreachable_in
from ._in_process import run_in_process
from ._settings import WorkerSettings

if TYPE_CHECKING:
    import optuna

__all__ = ["run_in_processes", "REPLACE_ME"]

log = logging.getLogger("lepidopt")
REPLACE_ME = 75  # a worker's exit code when it stopped to be replaced


@dataclasses.dataclass(frozen=True)
class _Job:
    run: Run
    n_trials: int | None
    deadline: float | None  # time.time() after which no trial starts
    settings: WorkerSettings
    log_level: int


def run_in_processes(run: Run, *, n_trials: int | None, timeout: float | None, settings: WorkerSettings,
                     finished: Callable[[], bool]) -> None:
    """Run the study's trials in a sequence of worker processes until ``finished()`` or the timeout.

    A SIGTERM or SIGINT here is passed on to the child, which leaves its trial to be retried; then
    Interrupted is raised here too."""
    deadline = None if timeout is None else time.time() + timeout
    job = _Job(run, n_trials, deadline, settings, log.getEffectiveLevel())
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of TensorFlow carried over
    generation = 0
    while True:
        generation += 1
        worker = context.Process(target=_work, args=(job,), name=f"lepidopt-trials-{generation}")
        worker.start()
        try:
            worker.join()
        except Interrupted as stop:
            worker.terminate()  # SIGTERM: the child leaves its trial for a retry and exits
            worker.join(60)
            raise stop
        code = cast(int, worker.exitcode)  # join() without a timeout returns once the process has ended
        if code in (128 + signal.SIGTERM, 128 + signal.SIGINT):  # the child was interrupted on its own
            raise Interrupted(code - 128)
        if code == StorageOutage.exit_code:
            raise StorageOutage(f"storage {mask_password(run.storage)!r}", "did not answer for longer than the worker "
                                f"waits, so its trial process {worker.pid} gave up (its log says when).",
                                fix="Start the worker again once the storage answers.")
        if code != REPLACE_ME:
            if code != 0:
                raise StudyError(
                    f"trial worker process {worker.pid}", f"ended with exit code {code}"
                    f"{' (killed by signal %d)' % -code if code < 0 else ''}; its trials up to "
                    "the last finished one are stored.", fix="Run the same command again to go on."
                )
            return
        if finished() or (deadline is not None and time.time() >= deadline):
            return
        log.info("starting a fresh trial process")


def _work(job: _Job) -> None:
    from .._logging import configure_logging

    configure_logging(job.log_level)
    try:
        try:
            replaced = _run_trials(job)
        except BaseException as error:  # gave up on the storage before its trials started
            gone = unreachable_in(error)
            if gone is None:
                raise
            raise outage_error(gone) from None
    except LepidoptError as exc:  # WorkerInterrupted included: its trial is enqueued again already
        log.error("%s", exc)
        sys.exit(exc.exit_code)
    sys.exit(REPLACE_ME if replaced else 0)


def _run_trials(job: _Job) -> bool:
    import psutil

    run = job.run
    study = load_study(run, open_storage(run.storage, heartbeat=job.settings.heartbeat, create=False))
    done, reason = 0, None
    process = psutil.Process()

    def after_trial(study_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal done, reason
        done += 1
        reason = job.settings.recycling.replace_after(done, process.memory_info().rss)
        if reason:
            log.info("trial process %d makes way for a fresh one: %s", process.pid, reason)
            study_.stop()

    timeout = None if job.deadline is None else max(job.deadline - time.time(), 0.001)
    run_in_process(run, study, n_trials=job.n_trials, timeout=timeout, settings=job.settings, on_trial=after_trial)
    return reason is not None
