"""How a process runs a study's trials, as one setting: when its trial processes are replaced, how dead
workers are found, and its trial policy (checkpoints, failures in a row)."""

from __future__ import annotations

import dataclasses

from .._sizes import format_size, parse_size
from ..engines import TrialPolicy, get_engine
from ..errors import SettingError, option
from ..runs import Run
from ..study import Heartbeat

__all__ = ["Recycling", "WorkerSettings", "check_recycling"]


@dataclasses.dataclass(frozen=True)
class Recycling:
    """Trials in worker processes that are replaced after ``max_trials_per_process`` trials, or when their
    resident memory after a trial is above ``max_rss`` (bytes, or a size such as '6GB'). Off by default:
    trials run in the calling process."""

    max_trials_per_process: int | None = None
    max_rss: int | str | None = None  # a size is read into bytes

    def __post_init__(self) -> None:
        if self.max_trials_per_process is not None and (isinstance(self.max_trials_per_process, bool)
                                                        or self.max_trials_per_process < 1):
            raise SettingError("max_trials_per_process", self.max_trials_per_process, "must be at least 1.")
        if self.max_rss is not None:
            object.__setattr__(self, "max_rss", parse_size(self.max_rss, setting="max_rss"))

    @property
    def enabled(self) -> bool:
        return self.max_trials_per_process is not None or self.max_rss is not None

    def replace_after(self, trials_done: int, rss: int) -> str | None:
        """Why this process should make way for a fresh one, or None."""
        limit = self.max_trials_per_process
        if limit is not None and trials_done >= limit:
            return f"{trials_done} trials run (--max-trials-per-process {limit})"
        if isinstance(self.max_rss, int) and rss > self.max_rss:
            return f"resident memory {rss / 2**20:.0f} MB is above --max-rss {self.max_rss / 2**20:.0f} MB"
        return None


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    """How ``search`` and ``worker`` run trials: ``recycling`` (fresh trial processes, for memory),
    ``heartbeat`` (dead workers' trials failed and retried, on RDB storages) and ``policy`` (checkpoints, and
    how many failed trials in a row stop the process)."""

    recycling: Recycling = Recycling()
    heartbeat: Heartbeat = Heartbeat()
    policy: TrialPolicy = TrialPolicy()


def check_recycling(run: Run, recycling: Recycling) -> None:
    """Refuse recycling for an engine whose search runs in one process."""
    if recycling.enabled and not get_engine(run.engine).recycles:
        setting, value = ("max_trials_per_process", recycling.max_trials_per_process) \
            if recycling.max_trials_per_process is not None else ("max_rss", format_size(int(recycling.max_rss or 0)))
        raise SettingError(setting, value,
                           f"recycles Optuna workers; with engine {run.engine} one process runs the whole search.",
                           fix=f"Drop it, or run a study with {option('engine', 'optuna')}.")
