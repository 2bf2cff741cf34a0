"""The metrics of a classifier on labelled images: overall scores, a per-class table and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import Taxonomy, consistent_share, decode_output, hierarchical_distance, mistake_severity

__all__ = ["classification_metrics", "level_columns", "taxonomy_test_metrics"]


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str],
                           predicted: np.ndarray | None = None) -> dict[str, Any]:
    """With ``predicted`` (-1: no prediction, a path of the tree that ends above this level) in place of each
    row's most probable class."""
    from sklearn import metrics

    n = len(classes)
    labels = np.arange(n)
    y_pred = probabilities.argmax(axis=1) if predicted is None else np.asarray(predicted)
    out: dict[str, Any] = {
        "n_images": int(len(y_true)),
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)),
        "weighted_f1": float(metrics.f1_score(y_true, y_pred, average="weighted", labels=labels, zero_division=0)),
    }
    for k in (3, 5):
        if k < n:
            out[f"top_{k}_accuracy"] = float(metrics.top_k_accuracy_score(y_true, probabilities, k=k, labels=labels))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                                              zero_division=0)
    out["per_class"] = [
        {"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support)
    ]
    counts = metrics.confusion_matrix(y_true, y_pred, labels=labels)
    rows = np.bincount(y_true, minlength=n)[:, None]  # the true support: a row also loses the images given no class
    out["confusion_matrix"] = {
        "classes": list(classes),
        "counts": counts.tolist(),
        "row_normalised": np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0).round(6).tolist(),
    }
    return out


def taxonomy_test_metrics(lineage: np.ndarray, probabilities: np.ndarray, taxonomy: Taxonomy,
                          decode: str) -> dict[str, Any]:
    """Every level's metrics (``levels``: as ``classification_metrics``, over the images placed at that level),
    the tree's (``tree``: the share of consistent paths, the mistake severity) and the levels' mean of the
    overall scores, on the predictions ``decode`` makes."""
    tables, predicted = decode_output(taxonomy, probabilities, decode)
    levels: dict[str, Any] = {}
    for level, (name, table) in enumerate(zip(taxonomy.levels, tables)):
        placed = lineage[:, level] >= 0
        levels[name] = classification_metrics(lineage[placed, level], table[placed], list(taxonomy.classes[level]),
                                              predicted[placed, level])
    out: dict[str, Any] = {"n_images": int(len(lineage)), "decode": decode}
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"):
        out[key] = float(np.mean([levels[name][key] for name in taxonomy.levels]))
    out["levels"] = levels
    out["tree"] = {"consistent_share": consistent_share(taxonomy, predicted),
                   "mistake_severity": mistake_severity(lineage, predicted),
                   "hierarchical_distance": hierarchical_distance(lineage, predicted)}
    return out


def level_columns(taxonomy: Taxonomy) -> list[str]:
    """A taxonomy model's output columns, ``level:class``."""
    return [f"{level}:{name}" for level, names in zip(taxonomy.levels, taxonomy.classes) for name in names]
