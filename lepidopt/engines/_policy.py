"""How a process runs its trials, whichever engine chooses them: checkpoints, and when a run of failures
stops it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import SettingError, TooManyFailures
from ..trial import Checkpoints

__all__ = ["TrialPolicy"]


@dataclasses.dataclass(frozen=True)
class TrialPolicy:
    """How a process runs its trials: checkpoints, and when to give up on a run of failures."""

    checkpoints: bool = True
    head_checkpoint_every: float = 30.0  # seconds; phase 2 saves after every epoch
    max_failures: int = 5  # consecutive failed trials before the process stops

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise SettingError("max_failures", self.max_failures, "must be at least 1.")
        if self.head_checkpoint_every < 0:
            raise SettingError("head_checkpoint_every", self.head_checkpoint_every,
                               "seconds between a head's checkpoints must be 0 (every epoch) or more.")

    def checkpoints_in(self, folder: Path) -> Checkpoints | None:
        """A trial's checkpoints in ``folder``, or None when checkpoints are off."""
        return Checkpoints(folder, head_every=self.head_checkpoint_every) if self.checkpoints else None

    def too_many_failures(self, failures: list[str]) -> TooManyFailures:
        """The error that stops a process after ``failures`` (their reasons) in a row."""
        return TooManyFailures(
            f"stopped after {len(failures)} failed trials in a row; the last failed with", f"{failures[-1]}.",
            fix="Fix the cause (see lepidopt status) and run again; finished trials are kept.")
