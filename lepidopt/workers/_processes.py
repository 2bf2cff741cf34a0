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
from typing import Callable

from .._signals import Interrupted
from ..engines import TrialPolicy, get_engine
from ..errors import LepidoptError, SettingError, StudyError
from ..runs import Run
from ..study import Heartbeat, load_study, open_storage
from ._in_process import run_in_process

__all__ = ["Recycling", "recycling", "run_in_processes", "REPLACE_ME"]

log = logging.getLogger("lepidopt")
REPLACE_ME = 75  # a worker's exit code when it stopped to be replaced


@dataclasses.dataclass(frozen=True)
class Recycling:
    max_trials: int | None = None  # trials per process
    max_rss: int | None = None  # bytes of resident memory after a trial

    def __post_init__(self) -> None:
        if self.max_trials is not None and self.max_trials < 1:
            raise SettingError("max_trials_per_process", self.max_trials, "must be at least 1.")
        if self.max_rss is not None and self.max_rss < 1:
            raise SettingError("max_rss", self.max_rss, "must be a positive size such as 6GB.")

    @property
    def enabled(self) -> bool:
        return self.max_trials is not None or self.max_rss is not None

    def replace_after(self, trials_done: int, rss: int) -> str | None:
        """Why this process should make way for a fresh one, or None."""
        if self.max_trials is not None and trials_done >= self.max_trials:
            return f"{trials_done} trials run (--max-trials-per-process {self.max_trials})"
        if self.max_rss is not None and rss > self.max_rss:
            return f"resident memory {rss / 2**20:.0f} MB is above --max-rss {self.max_rss / 2**20:.0f} MB"
        return None


@dataclasses.dataclass(frozen=True)
class _Job:
    run: Run
    n_trials: int | None
    deadline: float | None  # time.time() after which no trial starts
    recycling: Recycling
    policy: TrialPolicy
    heartbeat: Heartbeat
    log_level: int


def recycling(run: Run, *, max_trials_per_process: int | None, max_rss: str | int | None) -> Recycling:
    """When this process's trials move to fresh worker processes; sizes read as '6GB'."""
    from .._sizes import parse_size

    recycled = Recycling(max_trials=max_trials_per_process,
                         max_rss=None if max_rss is None else parse_size(max_rss, setting="max_rss"))
    if recycled.enabled and not get_engine(run.engine).recycles:
        raise SettingError("max_trials_per_process" if max_trials_per_process is not None else "max_rss",
                           max_trials_per_process if max_trials_per_process is not None else max_rss,
                           f"recycles Optuna workers; with engine {run.engine} one process runs the whole search. "
                           "Drop it, or run a study with --engine optuna.")
    return recycled


def run_in_processes(run: Run, *, n_trials: int | None, timeout: float | None, recycling: Recycling,
                     policy: TrialPolicy, heartbeat: Heartbeat, finished: Callable[[], bool]) -> None:
    """Run the study's trials in a sequence of worker processes until ``finished()`` or the timeout.

    A SIGTERM or SIGINT here is passed on to the child, which leaves its trial to be retried; then
    Interrupted is raised here too."""
    deadline = None if timeout is None else time.time() + timeout
    job = _Job(run, n_trials, deadline, recycling, policy, heartbeat, log.getEffectiveLevel())
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
        if worker.exitcode in (128 + signal.SIGTERM, 128 + signal.SIGINT):  # the child was interrupted on its own
            raise Interrupted(worker.exitcode - 128)
        if worker.exitcode != REPLACE_ME:
            if worker.exitcode != 0:
                raise StudyError(
                    f"trial worker process {worker.pid} ended with exit code {worker.exitcode}"
                    f"{' (killed by signal %d)' % -worker.exitcode if worker.exitcode < 0 else ''}; its trials up to "
                    "the last finished one are stored. Run the same command again to go on."
                )
            return
        if finished() or (deadline is not None and time.time() >= deadline):
            return
        log.info("starting a fresh trial process")


def _work(job: _Job) -> None:
    from .._logging import configure_logging

    configure_logging(job.log_level)
    try:
        replaced = _run_trials(job)
    except LepidoptError as exc:  # WorkerInterrupted included: its trial is enqueued again already
        log.error("%s", exc)
        sys.exit(exc.exit_code)
    sys.exit(REPLACE_ME if replaced else 0)


def _run_trials(job: _Job) -> bool:
    import psutil

    run = job.run
    study = load_study(run, open_storage(run.storage, heartbeat=job.heartbeat, create=False))
    done, reason = 0, None
    process = psutil.Process()

    def after_trial(study_, trial) -> None:
        nonlocal done, reason
        done += 1
        reason = job.recycling.replace_after(done, process.memory_info().rss)
        if reason:
            log.info("trial process %d makes way for a fresh one: %s", process.pid, reason)
            study_.stop()

    timeout = None if job.deadline is None else max(job.deadline - time.time(), 0.001)
    run_in_process(run, study, n_trials=job.n_trials, timeout=timeout, policy=job.policy, heartbeat=job.heartbeat,
                   on_trial=after_trial)
    return reason is not None
