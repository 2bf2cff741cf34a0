"""A study's trials run in this process by its engine, with SIGTERM and SIGINT turned into a clean stop: the
interrupted trial is left to be run again and the process says how to go on. A storage that stays unreachable
past the outage limit ends the worker too, its trial left to the heartbeat sweep."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from .._signals import Interrupted, stopping_on_signals
from ..engines import Engine, get_engine
from ..errors import StorageOutage, WorkerInterrupted, option
from ..runs import Run
from ..study import StorageUnreachable
from ..trial import StudyData, study_data
from ._settings import WorkerSettings

__all__ = ["run_in_process", "interruptible"]


def run_in_process(run: Run, study: Any, *, n_trials: int | None, timeout: float | None, settings: WorkerSettings,
                   data: StudyData | None = None, on_trial: Callable[[Any, Any], None] | None = None) -> None:
    """Trials of ``study`` in this process until its total or the timeout; ``data``: the study's data if this
    process has it already (else it is built from the run)."""
    engine = get_engine(run.engine)
    with interruptible(engine, study, retries=settings.heartbeat.retries):
        engine.run_trials(run, study, data or study_data(run), n_trials=n_trials, timeout=timeout,
                          policy=settings.policy, on_trial=on_trial)


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
        except StorageUnreachable as gone:
            raise StorageOutage(
                f"storage {gone.storage!r}", f"did not answer for {gone.seconds:.0f} s ({gone.reason}), the longest "
                f"this worker waits ({option('outage')}); a trial it was running is left to the heartbeat sweep, "
                "which retries it from its checkpoint.",
                fix="Start the worker again once the storage answers."
            ) from None
