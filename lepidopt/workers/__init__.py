"""Workers: a study's trials run in this process, or in worker processes replaced after a number of trials or
above a memory threshold, stopped cleanly by SIGTERM and SIGINT."""

from ._loop import run_trials
from ._processes import Recycling, recycling

__all__ = ["Recycling", "recycling", "run_trials"]
