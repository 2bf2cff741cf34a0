"""What every trial of a study reads: the frozen split, its images decoded once per image size, and the
shared backbone features."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from ..data import Split, decoded_images, read_split
from ..recipe import Recipe
from ..runs import DEFAULT_AUGMENT_VIEWS, DEFAULT_FEATURE_CACHE_LIMIT, Run, check_augment_views
from ._feature_cache import FeatureCache, cache_key

__all__ = ["StudyData", "study_data"]


def study_data(run: Run) -> "StudyData":
    """What the trials of ``run``'s study read, built from the recorded run alone: its split (checked against
    the data it was made from), its cache folder, and how features are cached and augmented. Search,
    workers, export and report all build it here, so a model is retrained as its trial was trained."""
    return StudyData(split=read_split(run.folder / "split.json", data=run.data), cache_dir=run.folder / "cache",
                     feature_cache=run.feature_cache, augment_views=run.augment_views,
                     cache_limit=run.feature_cache_limit)


@dataclasses.dataclass
class StudyData:
    split: Split
    cache_dir: Path
    feature_cache: bool = True  # share frozen-backbone features between trials and workers
    augment_views: int = DEFAULT_AUGMENT_VIEWS
    cache_limit: int = DEFAULT_FEATURE_CACHE_LIMIT  # bytes
    _images: dict[int, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_augment_views(self.augment_views)
        self.features = FeatureCache(self.cache_dir, limit=self.cache_limit) if self.feature_cache else None

    @property
    def n_classes(self) -> int:
        """The classes of the split's one label (a taxonomy's coarsest level)."""
        return len(self.split.classes)

    @functools.cached_property
    def fingerprint(self) -> str:
        """The split's fingerprint, taken once per process: it stats every image file."""
        return self.split.fingerprint()

    def feature_key(self, recipe: Recipe, **parts: object) -> str:
        """The cache key of what the recipe's backbone makes of this study's images: the data, backbone,
        weights and image size, plus ``parts`` (pooling, augmentation strength and view, layer)."""
        from ..model import weights_identity

        return cache_key(data=self.fingerprint, backbone="resnet50", weights=weights_identity(recipe.weights),
                         image_size=recipe.image_size, **parts)

    def images(self, image_size: int) -> np.ndarray:
        """(N, size, size, 3) uint8, a read-only memory map in split order, decoded on first use only."""
        if image_size not in self._images:
            self._images[image_size] = decoded_images(self.split, image_size=image_size, cache_dir=self.cache_dir,
                                                      fingerprint=self.fingerprint)
        return self._images[image_size]
