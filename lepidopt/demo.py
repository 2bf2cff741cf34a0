"""``lepidopt demo``: draw the demo collection if absent, then run a small study on it."""

from __future__ import annotations

import logging
from pathlib import Path

import dataclasses
import time

from .data import DataSpec, make_demo_collection
from .results import ReportResult, report_study
from .api import SearchSummary, search

__all__ = ["run_demo", "DemoResult", "DEMO_TRIALS", "TAXONOMY_LEVELS"]

log = logging.getLogger("lepidopt")
DEMO_TRIALS = 10
TAXONOMY_LEVELS = ("family", "subfamily", "genus", "species")
# The taxonomy demo: three genera a family and two species a genus, so pairs of genera make subfamilies (six
# families, twelve subfamilies, eighteen genera, thirty-six species), written with an ETHEC manifest.
TREE_GENERA, TREE_SPECIES = 3, 2


@dataclasses.dataclass(frozen=True)
class DemoResult:
    search: SearchSummary
    report: ReportResult
    seconds: float


def run_demo(*, data_dir: str | Path | None = None, results_dir: str | Path = "results", study: str | None = None,
             n_trials: int = DEMO_TRIALS, seed: int = 0, taxonomy: bool = False) -> DemoResult:
    """The demo study on the synthetic collection (built-in ``demo`` space, weights none, 64 px), then the
    best model exported and the report written. With ``taxonomy``, the collection is drawn as a tree (family,
    subfamily, genus, species) and the study learns every level (``demo-taxonomy`` space), judged by the
    levels' mean balanced accuracy, its predictions decoded as paths of the tree.

    Args:
        data_dir: Where the demo collection is drawn, unless it holds it already (default demo-data, or
            demo-data-taxonomy).
        results_dir: Where the study's folder goes.
        study: The study's name (default demo, or demo-taxonomy).
        n_trials: The study's total of finished trials.
        seed: Seeds the drawing, the split, the sampler and every trial.
        taxonomy: The four-level demo.

    Returns:
        The search's summary, the report (which exported the best model first) and the seconds it took.

    Raises:
        LepidoptError: As :func:`lepidopt.search` and :func:`lepidopt.report_study` raise them.
    """
    started = time.perf_counter()
    data_dir = Path(data_dir or ("demo-data-taxonomy" if taxonomy else "demo-data"))
    study = study or ("demo-taxonomy" if taxonomy else "demo")
    drawn = (data_dir / "ethec_manifest.json").is_file() if taxonomy else any(data_dir.glob("*/*.jpg"))
    if not drawn:
        log.info("drawing the demo collection into %s%s", data_dir, " as a tree" if taxonomy else "")
        if taxonomy:
            make_demo_collection(data_dir, seed=seed, genera=TREE_GENERA, species=TREE_SPECIES, manifest=True)
        else:
            make_demo_collection(data_dir, seed=seed)
    if taxonomy:
        data = DataSpec(str(data_dir / "ethec_manifest.json"), levels=TAXONOMY_LEVELS)
        summary = search(study=study, data=data, space="demo-taxonomy", results_dir=results_dir, n_trials=n_trials,
                         seed=seed, objective="mean.balanced_accuracy", decode="consistent")
    else:
        summary = search(study=study, data=str(data_dir), space="demo", results_dir=results_dir, n_trials=n_trials,
                         seed=seed)
    report = report_study(study=study, results_dir=results_dir)
    return DemoResult(search=summary, report=report, seconds=time.perf_counter() - started)
