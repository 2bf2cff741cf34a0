"""``lepidopt report``: the clustering report of a study's best model, or of embeddings a user brings."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_text_atomically
from ..errors import ReportError, option
from ._best import load_best
from ._labels import load_labels
from ._clustering import ClusteringResult, ClusteringSettings, cluster_embeddings
from ._dashboard import attach_to_study
from ._export import export_best
from ._figures import clustering_figures, confusion_figure, study_figures, sunburst_figure
from ._html import render_report

__all__ = ["ReportResult", "report_study", "report_embeddings", "EMBEDDINGS_KEYS"]

# What export writes to best/embeddings.npz and report --embeddings reads from a .npz.
EMBEDDINGS_KEYS = {
    "embeddings": "float32, points x features: the penultimate layer of the model",
    "labels": "int, one per point: an index into classes",
    "classes": "str, the class names",
    "paths": "str, the image each point was computed from",
    "subsets": "str, train, val or test",
    "lineage": "int, points x levels, a taxonomy study's only: each point's class index per level, -1 below "
               "where it is placed",
    "taxonomy": "str, a taxonomy study's only: the tree as JSON (levels, classes per level, each class's parent)",
}

log = logging.getLogger("lepidopt")


@dataclasses.dataclass(frozen=True)
class ReportResult:
    index: Path
    metrics: dict[str, Any]
    clustering: ClusteringResult


def report_study(*, study: str, storage: str | None = None, results_dir: str | Path | None = None,
                 settings: ClusteringSettings | None = None, dashboard: bool = True) -> ReportResult:
    """Write ``results/<study>/report/`` for the best trial, exporting it first when best/ is missing or stale.

    Args:
        study: The study's name.
        storage: The study's storage URL; default: the one in its run.yaml.
        results_dir: Where the study's folder is, if not where it was created.
        settings: How the embeddings are clustered (variance kept by PCA, the k range, UMAP, t-SNE).
        dashboard: Also attach the main figures and a note to the study, for optuna-dashboard.

    Returns:
        The report's index.html, its metrics and the clustering result.

    Raises:
        StudyError: The storage does not hold the study.
        ReportError: The study has no completed trial, or its test split is too small to cluster.
    """
    settings = settings or ClusteringSettings()
    best = load_best(study=study, storage=storage, results_dir=results_dir)
    best_dir = best.folder / "best"
    exported = _read_json(best_dir / "metrics.json")
    if exported is None or exported.get("trial") != best.trial.number or not (best_dir / "embeddings.npz").exists():
        log.info("best trial %d not exported yet: exporting it first", best.trial.number)
        exported = export_best(study=study, storage=storage, results_dir=results_dir).metrics
    with np.load(best_dir / "embeddings.npz") as saved:
        test = saved["subsets"] == "test"  # export --all-splits saves more; the report analyses held-out data
        embeddings, labels = saved["embeddings"][test], saved["labels"][test]
        classes = [str(c) for c in saved["classes"]]
        taxonomy = json.loads(str(saved["taxonomy"])) if "taxonomy" in saved.files else None
        levels = None if taxonomy is None else {
            level: (saved["lineage"][test][:, depth], list(taxonomy["classes"][depth]))
            for depth, level in enumerate(taxonomy["levels"])}
    clustering = cluster_embeddings(embeddings, labels, classes=classes, settings=settings, levels=levels)

    trials = best.study.trials
    states = [t.state.name for t in trials]
    metrics = {
        "summary": {
            "study": study, "objective": best.run.objective, "direction": best.study.direction.name.lower(),
            "n_trials": len(trials), "n_complete": states.count("COMPLETE"), "n_pruned": states.count("PRUNED"),
            "n_failed": states.count("FAIL"), "best_trial": best.trial.number, "best_value": best.trial.value,
            "best_params": best.trial.params,
        },
        "export": {
            "how": (f"The best trial (#{exported['trial']}) was retrained from its recipe and seed; validation "
                    f"{best.run.objective} {exported['retrained_validation_value']:.4f} against the trial's "
                    f"{exported['trial_validation_value']:.4f}."),
            "trial_validation_value": exported["trial_validation_value"],
            "retrained_validation_value": exported["retrained_validation_value"],
        },
        "test": exported["test"],
        "clustering": clustering.to_dict(),
    }
    test_metrics = exported["test"]
    if taxonomy is None:
        figures = {**study_figures(best.study), "confusion": confusion_figure(test_metrics["confusion_matrix"])}
    else:  # the coarsest level's confusion; the tree's recall at every level
        coarsest = test_metrics["levels"][taxonomy["levels"][0]]
        figures = {**study_figures(best.study), "confusion": confusion_figure(coarsest["confusion_matrix"]),
                   "sunburst": sunburst_figure(taxonomy, test_metrics["levels"])}
    figures.update(clustering_figures(clustering))
    out = best.folder / "report"
    index = _write_report(out, title=f"lepidopt report: {study}",
                          subtitle=f"best trial #{best.trial.number} of {len(trials)}, embeddings of the test split",
                          figures=figures, metrics=metrics)
    if dashboard:
        attach_to_study(best.study, figures=figures, note=_note(metrics, index), folder=best.folder,
                        files=[best_dir / "model.keras", best_dir / "metrics.json", index, out / "metrics.json"])
    return ReportResult(index=index, metrics=metrics, clustering=clustering)


def report_embeddings(*, embeddings: str | Path, labels: str | Path | None = None, label_column: str | None = None,
                      out: str | Path = "report", settings: ClusteringSettings | None = None) -> ReportResult:
    """The clustering part of the report on any embeddings and labels.

    Args:
        embeddings: A .npy array (points x features), or a .npz holding EMBEDDINGS_KEYS (what
            ``lepidopt export`` writes), whose labels are used unless ``labels`` is given.
        labels: A .npy array, a .txt file with one label per line, or a .csv file (see ``load_labels``).
        label_column: The column of a .csv labels file that holds the labels.
        out: The folder the report is written to.
        settings: How the embeddings are clustered.

    Returns:
        The report's index.html, its metrics and the clustering result.

    Raises:
        ReportError: Embeddings or labels that cannot be read, do not match, or are too few to cluster.
        SettingError: ``label_column`` with labels that are not a .csv file.
    """
    settings = settings or ClusteringSettings()
    path = Path(embeddings)
    x, y, classes = _load_embeddings(path)
    if labels is not None:
        y, classes = load_labels(labels, n_points=len(x), column=label_column), None
    elif y is None:
        raise ReportError(f"embeddings file {str(path)!r}", f"holds no labels; give them with {option('labels')} (a "
                          ".npy array, a .txt file with one label per line, or a .csv file).")
    clustering = cluster_embeddings(x, y, classes=classes, settings=settings)
    metrics = {"clustering": clustering.to_dict()}
    source = Path(labels).name if labels is not None else path.name
    index = _write_report(Path(out), title=f"lepidopt clustering report: {path.name}",
                          subtitle=f"{len(x)} embeddings, labels from {source}",
                          figures=clustering_figures(clustering), metrics=metrics)
    return ReportResult(index=index, metrics=metrics, clustering=clustering)


def _load_embeddings(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """(embeddings, labels or None, class names or None) from a .npy array or a .npz of EMBEDDINGS_KEYS."""
    if not path.is_file():
        raise ReportError(f"embeddings file {str(path)!r}", "does not exist.")
    try:
        saved = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ReportError(f"embeddings file {str(path)!r}", f"is not a NumPy .npy or .npz file ({exc}).") from None
    if isinstance(saved, np.ndarray):
        return saved, None, None
    with saved:
        if "embeddings" not in saved.files:
            raise ReportError(f"embeddings file {str(path)!r}", f"holds {saved.files}, not the array 'embeddings' "
                              f"that lepidopt export writes (keys: {', '.join(EMBEDDINGS_KEYS)}).")
        if "labels" not in saved.files:
            return saved["embeddings"], None, None
        classes = [str(c) for c in saved["classes"]] if "classes" in saved.files else None
        return saved["embeddings"], saved["labels"], classes


def _write_report(out: Path, *, title: str, subtitle: str, figures: dict[str, Any], metrics: dict[str, Any]) -> Path:
    page = render_report(title=title, subtitle=subtitle, figures=figures, metrics=metrics)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "index.html", page)
    write_text_atomically(out / "metrics.json", json.dumps(metrics, indent=1, default=_jsonable))
    log.info("report written: %s", out / "index.html")
    return out / "index.html"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _note(metrics: dict[str, Any], index: Path) -> str:
    s, t, c = metrics["summary"], metrics["test"], metrics["clustering"]
    return "\n".join([
        f"## lepidopt report: best trial #{s['best_trial']}",
        f"- validation {s['objective']}: **{s['best_value']:.4f}**",
        f"- test accuracy {t['accuracy']:.4f}, balanced accuracy {t['balanced_accuracy']:.4f}, "
        f"macro F1 {t['macro_f1']:.4f}",
        f"- PCA keeps {c['pca_components_kept']} components (95% of the variance); elbow k: PCA {c['pca']['elbow_k']}, "
        f"UMAP {c['umap']['elbow_k']}",
        f"- ARI at k = {len(c['classes'])}: PCA {c['pca']['scores_at_true_k']['ari']:.3f}, "
        f"UMAP {c['umap']['scores_at_true_k']['ari']:.3f}",
        "",
        f"**Verdict.** {c['verdict']}",
        "",
        f"The full report: `{index}` (also an artifact of this study).",
    ])
