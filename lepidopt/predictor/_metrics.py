"""The metrics of a classifier on labelled images: overall scores, a per-class table and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["classification_metrics"]


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict[str, Any]:
    from sklearn import metrics

    n = len(classes)
    labels = np.arange(n)
    y_pred = probabilities.argmax(axis=1)
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
    rows = counts.sum(axis=1, keepdims=True)
    out["confusion_matrix"] = {
        "classes": list(classes),
        "counts": counts.tolist(),
        "row_normalised": np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0).round(6).tolist(),
    }
    return out
