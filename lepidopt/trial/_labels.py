"""What one trial trains on and is judged by: the training images left after undersampling, their targets
and weights, and the validation labels; for a single label or for a taxonomy's every level."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..data import Split, class_weights, undersample
from ..errors import SettingError
from ..recipe import Recipe

__all__ = ["TrialLabels", "trial_labels", "sampling_groups", "sampling_level"]


@dataclasses.dataclass(frozen=True)
class TrialLabels:
    train_idx: np.ndarray  # images trained on, after undersampling
    train_rows: np.ndarray  # their positions among the split's training images
    val_idx: np.ndarray
    y_train: np.ndarray  # class indices; a taxonomy's: targets (model._levels)
    y_val: np.ndarray  # class indices; a taxonomy's: the lineage, (n, levels)
    class_weight: dict[int, float] | None  # a single label's
    sample_weight: np.ndarray | None  # a taxonomy's: each training image's class weight at the sampling level
    n_classes: int | tuple[int, ...]  # a taxonomy's: per level
    levels: tuple[str, ...] | None = None  # a taxonomy's

    def chance_classes(self, objective: str) -> float | None:
        """The class count whose uniform guess's log loss ``objective`` would show: the objective's level's, or for
        the levels' mean their geometric mean; None for the tree's objectives, which are no loss."""
        if isinstance(self.n_classes, int):
            return float(self.n_classes)
        scope = objective.rpartition(".")[0]
        if scope == "tree":
            return None
        if self.levels is not None and scope in self.levels:
            return float(self.n_classes[self.levels.index(scope)])
        return float(np.exp(np.mean(np.log(self.n_classes))))


def sampling_groups(lineage: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Each image's class at ``level`` as an index, and the indices of the classes placed at that level. An image
    not placed that deep counts in a class of its own with the others of its deepest placed class, so that
    undersampling and class weights at a fine level neither drop nor merge the images a fine class too small to
    split left one level up; those leftover classes, small by how they came about, do not set the size the
    placed classes are undersampled to."""
    prefixes = np.asarray(lineage)[:, :level + 1]
    unique, groups = np.unique(prefixes, axis=0, return_inverse=True)
    return groups.reshape(-1), np.flatnonzero(unique[:, level] >= 0)


def trial_labels(split: Split, recipe: Recipe, *, seed: int) -> TrialLabels:
    """The split's training images undersampled as ``recipe`` says (seeded), their targets and weights, and the
    validation labels: a single label's classes, or on a split with a taxonomy, every level's."""
    train_all, val_idx = split.indices("train"), split.indices("val")
    if split.taxonomy is None or split.lineage is None:
        keep = undersample(split.labels[train_all], ratio=recipe.sampling_ratio, seed=seed)
        train_idx = train_all[keep]
        y_train = split.labels[train_idx]
        single = class_weights(y_train, mode=recipe.sampling_class_weight, n_classes=len(split.classes))
        return TrialLabels(train_idx=train_idx, train_rows=keep, val_idx=val_idx, y_train=y_train,
                           y_val=split.labels[val_idx], class_weight=single, sample_weight=None,
                           n_classes=len(split.classes))
    from ..model import level_targets, level_weights

    levels = split.taxonomy.levels
    level = sampling_level(recipe, levels)
    groups, placed = sampling_groups(split.lineage, level)
    keep = undersample(groups[train_all], ratio=recipe.sampling_ratio, seed=seed, sized_by=placed)
    train_idx = train_all[keep]
    placed_rows = np.isin(groups[train_idx], placed)  # leftover classes weigh 1: they are rare by how they came about
    weights = class_weights(groups[train_idx][placed_rows], mode=recipe.sampling_class_weight,
                            n_classes=int(groups.max()) + 1)
    sample_weight = np.ones(len(train_idx), np.float32) if weights is None else \
        np.array([weights[int(g)] for g in groups[train_idx]], np.float32)
    loss_weights = level_weights(len(levels), recipe.taxonomy_fine_weight or 1.0)
    targets = level_targets(split.lineage[train_idx], loss_weights)
    return TrialLabels(train_idx=train_idx, train_rows=keep, val_idx=val_idx, y_train=targets,
                       y_val=split.lineage[val_idx], class_weight=None, sample_weight=sample_weight,
                       n_classes=tuple(len(c) for c in split.taxonomy.classes), levels=levels)


def sampling_level(recipe: Recipe, levels: tuple[str, ...]) -> int:
    """The index of the recipe's ``sampling.level`` among the study's ``levels`` (the coarsest when unset)."""
    if recipe.sampling_level is None:
        return 0
    if recipe.sampling_level not in levels:
        raise SettingError("sampling.level", recipe.sampling_level,
                           f"must be one of the study's taxonomy levels: {', '.join(levels)}.")
    return levels.index(recipe.sampling_level)
