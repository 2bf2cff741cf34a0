"""CPU seconds on Linux, for benchmarks that share one machine's cores between many processes: a thread's CPU by
what it was inside, a process's and its reaped children's, and the whole machine's."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

_TICK = os.sysconf("SC_CLK_TCK")


class CpuAccount:
    """The main thread's CPU seconds by what it was inside: a wrapped call's own seconds go to its kind, less the
    wrapped calls it makes itself (a sampler's reads of the storage count as storage); the rest is "other"."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)  # outermost calls of each kind
        self._inside = ["other"]
        self._mark = time.thread_time()

    def restart(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self._mark = time.thread_time()

    def _move(self) -> None:
        now = time.thread_time()
        self.seconds[self._inside[-1]] += now - self._mark
        self._mark = now

    def wrap(self, method: Callable, kind: str) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not threading.main_thread():
                return method(*args, **kwargs)
            self._move()
            if self._inside[-1] != kind:
                self.calls[kind] += 1
            self._inside.append(kind)
            try:
                return method(*args, **kwargs)
            finally:
                self._move()
                self._inside.pop()
        return call

    def wrap_methods(self, target: Any, names: list[str], kind: str) -> None:
        for name in names:
            method = getattr(target, name, None)
            if callable(method):
                setattr(target, name, self.wrap(method, kind))

    def totals(self) -> dict[str, float]:
        self._move()
        return dict(self.seconds)


def _stat(pid: int | str) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()  # the fields after the command name, from the state on


def process_seconds(pid: int, *, reaped: bool = False) -> float:
    """The CPU seconds of process ``pid`` so far; with ``reaped``, and of its children that have exited."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICK


def server_seconds(command: str = "postgres") -> float:
    """The CPU seconds of every running process called ``command``, and of the exited children its first one
    (the postmaster, whose backends live as long as their connections) has reaped."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != command:
                continue
            parent = _stat(entry.name)[1]
            first = parent == "0" or Path(f"/proc/{parent}/comm").read_text().strip() != command
            total += process_seconds(int(entry.name), reaped=first)
        except (OSError, ValueError):  # it exited while being read
            continue
    return total


def machine_seconds() -> tuple[float, float]:
    """(busy, all) CPU seconds of every core since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / _TICK, sum(fields) / _TICK
