"""The features phase 1 trains on: from the shared cache where the study has one, else computed in the trial.

Without augmentation, every image's features come from one cache entry. With augmentation of strength
s > 0, the cache holds ``data.augment_views`` augmented passes over the training split per strength
level, each computed the first time a trial needs it; epoch e trains on view e mod their number.
Validation features are never augmented.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import TYPE_CHECKING, Callable, TypeVar

import numpy as np

from ..data import image_batches
from ..recipe import Recipe
from ._study_data import StudyData

if TYPE_CHECKING:
    import keras

__all__ = ["Network", "Phase1Features", "phase1_features"]

_T = TypeVar("_T")



class Network:
    """ResNet-50 and its feature extractor, built on first use: a trial whose features are all cached and
    that does not fine-tune never builds the backbone."""

    def __init__(self, recipe: Recipe, timings: dict[str, float]) -> None:
        self.recipe, self.timings = recipe, timings
        self._backbone = self._extractor = None

    @property
    def backbone(self) -> keras.Model:
        if self._backbone is None:
            from ..model import build_backbone, build_feature_extractor

            started = time.perf_counter()
            self._backbone = build_backbone(weights=self.recipe.weights, image_size=self.recipe.image_size)
            self._extractor = build_feature_extractor(self._backbone, pooling=self.recipe.head_pooling)
            self.timings["build"] = self.timings.get("build", 0.0) + time.perf_counter() - started
        return self._backbone

    @property
    def extractor(self) -> keras.Model:
        self.backbone  # noqa: B018 (builds both)
        return self._extractor


@dataclasses.dataclass
class Phase1Features:
    """Validation features, and the training features as a list of views (epoch e trains on view e mod
    their number) or, for exact on-the-fly augmentation, made afresh for each epoch."""

    val: np.ndarray  # (n_val, d)
    views: list[np.ndarray] | None = None  # each (n_train, d), rows in the trial's training order
    per_epoch: Callable[[int], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if (self.views is None) == (self.per_epoch is None):
            raise TypeError("Phase1Features: give the training features as views or per_epoch, one of them.")


def phase1_features(recipe: Recipe, data: StudyData, network: Network, *, train_idx: np.ndarray,
                    val_idx: np.ndarray, train_rows: np.ndarray, seed: int,
                    timings: dict[str, float]) -> Phase1Features:
    """``train_idx`` are the trial's training images (split order) and ``train_rows`` their positions
    within the split's whole training subset, which is what augmented cache entries hold."""
    from ..model import build_augmentation, extract_features

    split = data.split

    def timed(compute: Callable[[], _T]) -> _T:
        started = time.perf_counter()
        try:
            return compute()
        finally:
            timings["features"] = timings.get("features", 0.0) + time.perf_counter() - started

    def features_of(indices: np.ndarray, augmentation: keras.layers.Layer | None = None) -> np.ndarray:
        batches = image_batches(data.images(recipe.image_size), split.labels, indices, batch_size=recipe.batch_size)
        return extract_features(network.extractor, batches, augmentation=augmentation)

    strength = recipe.augment_strength
    cache = data.features
    if cache is None:
        val = timed(lambda: features_of(val_idx))
        if strength == 0.0:
            return Phase1Features(val, views=[timed(lambda: features_of(train_idx))])
        augmentation = build_augmentation(strength, seed=seed)
        return Phase1Features(val, per_epoch=lambda epoch: timed(lambda: features_of(train_idx, augmentation)))

    key = functools.partial(data.feature_key, recipe, pooling=recipe.head_pooling)
    every = timed(lambda: cache.get(key(augment=0.0, view=0), lambda: features_of(np.arange(len(split.paths)))))
    val = np.asarray(every[val_idx])
    if strength == 0.0:
        return Phase1Features(val, views=[np.asarray(every[train_idx])])

    train_all = split.indices("train")

    def view(v: int) -> np.ndarray:
        entry = cache.get(key(augment=strength, view=v, subset="train"),
                          lambda: features_of(train_all, build_augmentation(strength, seed=v)))
        return np.asarray(entry[train_rows])

    return Phase1Features(val, views=timed(lambda: [view(v) for v in range(min(data.augment_views,
                                                                             recipe.epochs_head))]))
