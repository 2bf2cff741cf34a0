"""Validation metrics and the objectives a study can optimise."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..data import Taxonomy, consistent_share, decode_output, hierarchical_distance, mistake_severity
from ..errors import SettingError, option

__all__ = ["OBJECTIVES", "DECODERS", "classification_metrics", "objective_direction", "check_objective",
           "taxonomy_metrics"]

Direction = Literal["maximize", "minimize"]
OBJECTIVES: dict[str, Direction] = {
    "balanced_accuracy": "maximize",
    "accuracy": "maximize",
    "macro_f1": "maximize",
    "loss": "minimize",
}


TREE_OBJECTIVES: dict[str, Direction] = {"tree.consistent_share": "maximize", "tree.hierarchical_distance": "minimize"}
DECODERS = ("independent", "consistent")


def objective_direction(objective: str) -> Direction:
    """The direction of ``objective``: one of OBJECTIVES, a level's or the levels' mean of one (``genus.macro_f1``,
    ``mean.loss``) or a tree metric; whether the study has those levels is ``check_objective``'s to say."""
    if objective in OBJECTIVES:
        return OBJECTIVES[objective]
    if objective in TREE_OBJECTIVES:
        return TREE_OBJECTIVES[objective]
    if objective == "tree.mistake_severity":
        raise SettingError("objective", objective, "averages over the mistakes only, so more shallow mistakes would "
                           "lower it; it is reported, not optimised.",
                           fix="Use tree.hierarchical_distance, the same height averaged over every prediction.")
    _, _, metric = objective.rpartition(".")
    if "." in objective and metric in OBJECTIVES | {"micro_f1": "maximize"}:
        return "minimize" if metric == "loss" else "maximize"
    raise SettingError("objective", objective, f"must be one of {', '.join(OBJECTIVES)}, or in a study with taxonomy "
                       "levels a level's or the mean's (family.balanced_accuracy, mean.macro_f1) or "
                       f"{' or '.join(TREE_OBJECTIVES)}.")


def check_objective(objective: str, levels: tuple[str, ...] | None) -> Direction:
    """``objective``'s direction, once it is known to be something a study with these taxonomy ``levels``
    (None: a single label) measures."""
    direction = objective_direction(objective)
    if objective in OBJECTIVES:
        return direction
    if levels is None:
        raise SettingError("objective", objective, f"names a taxonomy level's metric, but the study has one label; "
                           f"use one of {', '.join(OBJECTIVES)}.",
                           fix=f"Or give the data's levels ({option('levels')}).")
    scope = objective.rpartition(".")[0]
    if objective not in TREE_OBJECTIVES and scope not in (*levels, "mean"):
        raise SettingError("objective", objective, f"names level {scope!r}, which the study does not have; its "
                           f"levels are {', '.join(levels)} (or mean, over them).")
    return direction


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray,
                           predicted: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1 over the classes present and log loss, as scikit-learn
    computes them, from one confusion matrix: this runs after every epoch of every trial, where
    scikit-learn's four calls cost ~10 ms. The predictions are ``predicted`` if given (-1: none, always
    wrong), else each row's most probable class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    if not np.all(np.isfinite(probabilities)):
        return {name: float("nan") for name in ("accuracy", "balanced_accuracy", "macro_f1", "loss")}
    n_classes = probabilities.shape[1]
    y_pred = probabilities.argmax(axis=1) if predicted is None else np.where(predicted < 0, n_classes, predicted)
    width = n_classes + 1  # a last column for "no prediction"
    confusion = np.bincount(y_true * width + y_pred, minlength=n_classes * width).reshape(n_classes, width)
    true_positive = np.diag(confusion).astype(float)
    support, predicted_count = confusion.sum(axis=1), confusion.sum(axis=0)[:n_classes]
    present = support > 0
    recall = true_positive[present] / support[present]
    f1_denominator = (support + predicted_count)[present]
    f1 = np.divide(2 * true_positive[present], f1_denominator, out=np.zeros_like(recall), where=f1_denominator > 0)
    clipped = np.clip(probabilities, 1e-7, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return {
        "accuracy": float(true_positive.sum() / len(y_true)),
        "balanced_accuracy": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "loss": float(-np.log(clipped[np.arange(len(y_true)), y_true]).mean()),
    }


def taxonomy_metrics(lineage: np.ndarray, probabilities: np.ndarray, taxonomy: Taxonomy, *,
                     decode: str = "independent") -> dict[str, float]:
    """Per level (``family.accuracy`` ...: accuracy, balanced accuracy, micro and macro F1, log loss, over the
    images placed at that level), their mean over levels (``mean.*``, and the plain names as in a single-label
    study), the share of predictions that are paths of the tree, the mistake severity and the hierarchical
    distance, from a taxonomy head's output (every level's probabilities side by side) and the true ``lineage``
    ((n, levels), -1 where not placed). Predictions are ``decode``d: each level's own most probable class, or
    the best consistent path."""
    tables, predicted = decode_output(taxonomy, probabilities, decode)
    metrics: dict[str, float] = {}
    for level, (name, table) in enumerate(zip(taxonomy.levels, tables)):
        placed = lineage[:, level] >= 0
        scores = classification_metrics(lineage[placed, level], table[placed], predicted[placed, level])
        scores["micro_f1"] = scores["accuracy"]  # one label per image: micro-averaged F1 is the accuracy
        metrics.update({f"{name}.{metric}": value for metric, value in scores.items()})
    for metric in ("accuracy", "balanced_accuracy", "micro_f1", "macro_f1", "loss"):
        mean = float(np.mean([metrics[f"{name}.{metric}"] for name in taxonomy.levels]))
        metrics[f"mean.{metric}"] = mean
        if metric in OBJECTIVES:
            metrics[metric] = mean
    metrics["tree.consistent_share"] = consistent_share(taxonomy, predicted)
    metrics["tree.mistake_severity"] = mistake_severity(lineage, predicted)
    metrics["tree.hierarchical_distance"] = hierarchical_distance(lineage, predicted)
    return metrics
