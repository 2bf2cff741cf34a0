"""``lepidopt demo``: draw the demo collection if absent, then run a small study on it."""

from __future__ import annotations

import logging
from pathlib import Path

from .data import make_demo_collection
from .search import SearchSummary, search

__all__ = ["run_demo", "DEMO_TRIALS"]

log = logging.getLogger("lepidopt")
DEMO_TRIALS = 10


def run_demo(*, data_dir: str | Path = "demo-data", results_dir: str | Path = "results", study: str = "demo",
             n_trials: int = DEMO_TRIALS, seed: int = 0) -> SearchSummary:
    """The demo study on the synthetic collection: the built-in ``demo`` space, weights none, 64 px."""
    data_dir = Path(data_dir)
    if not any(data_dir.glob("*/*.jpg")):
        log.info("drawing the demo collection into %s", data_dir)
        make_demo_collection(data_dir, seed=seed)
    return search(study=study, data=str(data_dir), space="demo", results_dir=results_dir, n_trials=n_trials, seed=seed)
