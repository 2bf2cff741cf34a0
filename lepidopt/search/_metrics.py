"""Validation metrics and the objectives a study can optimise."""

from __future__ import annotations

import numpy as np

from ..errors import StudyError

__all__ = ["OBJECTIVES", "classification_metrics", "objective_direction"]

OBJECTIVES = {
    "balanced_accuracy": "maximize",
    "accuracy": "maximize",
    "macro_f1": "maximize",
    "loss": "minimize",
}


def objective_direction(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise StudyError(f"objective {objective!r}: must be one of {list(OBJECTIVES)}.")
    return OBJECTIVES[objective]


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

    n_classes = probabilities.shape[1]
    y_pred = probabilities.argmax(axis=1)
    if not np.all(np.isfinite(probabilities)):
        return {"accuracy": float("nan"), "balanced_accuracy": float("nan"), "macro_f1": float("nan"), "loss": float("nan")}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true), zero_division=0)),
        "loss": float(log_loss(y_true, np.clip(probabilities, 1e-7, 1.0), labels=np.arange(n_classes))),
    }
