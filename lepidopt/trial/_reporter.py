"""The one thing a trial knows about the engine driving it: where to report and whether to stop."""

from __future__ import annotations

import abc

__all__ = ["Reporter", "NullReporter", "TrialStopped"]


class Reporter(abc.ABC):
    """Receives a trial's objective after every epoch of both phases (``step`` counts epochs from 0)."""

    @abc.abstractmethod
    def report(self, value: float, step: int) -> None: ...

    @abc.abstractmethod
    def should_stop(self) -> bool:
        """True when the engine wants the trial stopped (pruned) after the last report."""


class NullReporter(Reporter):
    """For a trial run on its own: remembers what was reported and never stops it."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, float]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_stop(self) -> bool:
        return False


class TrialStopped(Exception):
    """Raised by a trial when its reporter asks it to stop; carries the step it stopped at."""

    def __init__(self, step: int, value: float, history: list[dict]) -> None:
        super().__init__(f"stopped after step {step} (value {value:.4f})")
        self.step = step
        self.value = value
        self.history = history
        self.timings: dict[str, float] = {}  # seconds per stage up to the stop, filled in by run_trial
