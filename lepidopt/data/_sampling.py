"""Per-trial undersampling of the training split and class weights for what remains."""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError

__all__ = ["undersample", "class_weights"]


def undersample(labels: np.ndarray, *, ratio: float, seed: int, sized_by: np.ndarray | None = None) -> np.ndarray:
    """Positions into ``labels`` to keep so that the smallest class holds at least ``ratio`` x the largest.

    This is imbalanced-learn's meaning of a float ratio, extended to many classes: every class is
    capped at ceil(smallest / ratio) images, drawn at random with ``seed``; 1.0 balances fully. With
    ``sized_by`` (classes of ``labels``), the smallest of those classes sets the cap.
    """
    if not 0.0 < ratio <= 1.0:
        raise DataError(f"sampling.ratio {ratio}", "must lie in (0, 1].")
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    sizing = counts if sized_by is None else counts[np.isin(classes, sized_by)]
    cap = math.ceil((sizing if len(sizing) else counts).min() / ratio - 1e-9)
    rng = np.random.default_rng(seed)
    keep = []
    for c, n in zip(classes, counts):
        members = np.flatnonzero(labels == c)
        keep.append(members if n <= cap else rng.choice(members, size=cap, replace=False))
    return np.sort(np.concatenate(keep))


def class_weights(labels: np.ndarray, *, mode: str, n_classes: int) -> dict[int, float] | None:
    """``none`` (no weights), ``balanced`` (scikit-learn's compute_class_weight) or ``sqrt`` (its square root)."""
    if mode == "none":
        return None
    if mode not in ("balanced", "sqrt"):
        raise DataError(f"sampling.class_weight {mode!r}", "must be one of none, balanced, sqrt.")
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    if mode == "sqrt":
        weights = np.sqrt(weights)
    out = {int(c): 1.0 for c in range(n_classes)}
    out.update({int(c): float(w) for c, w in zip(present, weights)})
    return out
