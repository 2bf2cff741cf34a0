"""``lepidopt demo``: draw the demo collection if absent, then run a small study on it."""

from __future__ import annotations

import logging
from pathlib import Path

import dataclasses
import time

from .data import make_demo_collection
from .results import ReportResult, report_study
from .api import SearchSummary, search

__all__ = ["run_demo", "DemoResult", "DEMO_TRIALS"]

log = logging.getLogger("lepidopt")
DEMO_TRIALS = 10


@dataclasses.dataclass(frozen=True)
class DemoResult:
    search: SearchSummary
    report: ReportResult
    seconds: float


def run_demo(*, data_dir: str | Path = "demo-data", results_dir: str | Path = "results", study: str = "demo",
             n_trials: int = DEMO_TRIALS, seed: int = 0) -> DemoResult:
    """The demo study on the synthetic collection (built-in ``demo`` space, weights none, 64 px), then the
    best model exported and the report written.

    Args:
        data_dir: Where the demo collection is drawn, unless it holds it already.
        results_dir: Where the study's folder goes.
        study: The study's name.
        n_trials: The study's total of finished trials.
        seed: Seeds the drawing, the split, the sampler and every trial.

    Returns:
        The search's summary, the report (which exported the best model first) and the seconds it took.

    Raises:
        LepidoptError: As :func:`lepidopt.search` and :func:`lepidopt.report_study` raise them.
    """
    started = time.perf_counter()
    data_dir = Path(data_dir)
    if not any(data_dir.glob("*/*.jpg")):
        log.info("drawing the demo collection into %s", data_dir)
        make_demo_collection(data_dir, seed=seed)
    summary = search(study=study, data=str(data_dir), space="demo", results_dir=results_dir, n_trials=n_trials,
                     seed=seed)
    report = report_study(study=study, results_dir=results_dir)
    return DemoResult(search=summary, report=report, seconds=time.perf_counter() - started)
