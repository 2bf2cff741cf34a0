"""Workers: a study's trials run in this process, or in worker processes replaced after a number of trials or
above a memory threshold, stopped cleanly by SIGTERM and SIGINT."""

from ._loop import run_trials
from ._settings import Recycling, WorkerSettings, check_recycling

__all__ = ["Recycling", "WorkerSettings", "check_recycling", "run_trials"]
