"""SIGTERM and SIGINT for workers: the first stops the trial at once (unless a checkpoint is being
written, which is finished first), the second exits the process on the spot.

Clusters send SIGTERM on preemption and SIGKILL a little later (Slurm's KillWait, 30 s by default),
so a worker does not wait for its epoch to end: the last checkpoint already holds every finished
epoch, and the trial is retried from there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType
from typing import Iterator

__all__ = ["Interrupted", "stopping_on_signals", "checkpoint_in_progress", "stop_if_signalled"]


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by the first SIGTERM or SIGINT. A KeyboardInterrupt, so Optuna marks the
    running trial failed and lets it through instead of catching it as a trial error."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number
        self.trial_number: int | None = None  # the trial it stopped, as the engine running it records
        self.resumes_at: str | None = None  # its retry's starting point ("head epoch 4"), None for its start


class _State:
    installed = False
    received: int | None = None
    writing = 0  # checkpoint writes under way
    pending = False


_state = _State()


def _handle(signal_number: int, _frame: FrameType | None) -> None:
    if _state.received is not None:
        os._exit(128 + signal_number)  # a second signal: at once
    _state.received = signal_number
    if _state.writing:
        _state.pending = True
    else:
        raise Interrupted(signal_number)


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """While inside, SIGTERM and SIGINT raise Interrupted (between checkpoint writes). Outside the main
    thread, where Python cannot handle signals, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in (signal.SIGTERM, signal.SIGINT)}
    _state.installed, _state.received, _state.pending = True, None, False
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state.installed = False


@contextlib.contextmanager
def checkpoint_in_progress() -> Iterator[None]:
    """A signal that arrives while a checkpoint is written takes effect once it is complete."""
    _state.writing += 1
    try:
        yield
    finally:
        _state.writing -= 1
    if _state.pending and not _state.writing and _state.received is not None:
        _state.pending = False
        raise Interrupted(_state.received)


def stop_if_signalled() -> None:
    """Raise Interrupted again for a signal already received, where its first Interrupted did not stop the run:
    raised inside a finaliser (which Python only prints) or turned into another error by a library's callback."""
    if _state.installed and _state.received is not None and not _state.pending:
        raise Interrupted(_state.received)
