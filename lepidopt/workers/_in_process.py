"""A study's trials run in this process by its engine, with SIGTERM and SIGINT turned into a clean stop: the
interrupted trial is left to be run again and the process says how to go on. A storage that stays unreachable
past the outage limit ends the worker too, its trial left to the heartbeat sweep."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from typing import Any, Callable, Iterator

from .._signals import Interrupted, stopping_on_signals
from ..engines import Engine, get_engine
from ..errors import WorkerInterrupted
from ..runs import Run
from ..study import outage_error, unreachable_in
from ..trial import StudyData, study_data
from ._settings import WorkerSettings

__all__ = ["run_in_process", "interruptible"]


def run_in_process(run: Run, study: Any, *, n_trials: int | None, timeout: float | None, settings: WorkerSettings,
                   data: StudyData | None = None, on_trial: Callable[[Any, Any], None] | None = None,
                   own_seed: bool = True) -> None:
    """Trials of ``study`` in this process until its total or the timeout; ``data``: the study's data if this
    process has it already (else it is built from the run). ``own_seed``: the recipes are drawn from a seed
    of this process's own, not the study's."""
    engine = get_engine(run.engine)
    with interruptible(engine, study, retries=settings.heartbeat.retries):
        engine.run_trials(run, study, data or study_data(run), n_trials=n_trials, timeout=timeout,
                          policy=settings.policy, on_trial=on_trial,
                          sampler_seed=process_seed(run.seed) if own_seed else None)


def process_seed(seed: int) -> int:
    """A seed of this process's own, from the study's: Optuna's samplers seeded alike in several processes draw
    the same recipes, so workers started together on one study would train the same ones."""
    mixed = f"{seed}:{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
    return int(hashlib.sha256(mixed.encode()).hexdigest()[:8], 16)


@contextlib.contextmanager
def interruptible(engine: Engine, study: Any, *, retries: int) -> Iterator[None]:
    """SIGTERM and SIGINT stop the block; raises WorkerInterrupted, the interrupted trial left to the engine to
    run again. A storage unreachable past the outage limit raises StorageOutage."""
    with stopping_on_signals():
        try:
            yield
        except Interrupted as stop:
            retried = engine.after_interrupt(study, stop, retries=retries)
            raise WorkerInterrupted(f"interrupted by {stop}", f"{retried}run the same command again to go on.",
                                    signal_number=stop.signal_number) from None
        except BaseException as error:  # Optuna may have turned the give-up into another error
            gone = unreachable_in(error)
            if gone is None:
                raise
            raise outage_error(gone) from None
