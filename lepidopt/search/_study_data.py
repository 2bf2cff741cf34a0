"""What every trial of a study reads: the frozen split, its images decoded once per image size, and the
shared backbone features."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from ..data import Split, decoded_images
from ..errors import StudyError
from ._feature_cache import DEFAULT_LIMIT, FeatureCache

__all__ = ["StudyData", "DEFAULT_VIEWS"]

# Augmented feature passes cached per strength level. Four: a head trains for ~8 epochs in the built-in
# spaces, so each view is seen about twice, and filling them costs four backbone passes over the training
# split per strength level, which one uncached augmented trial spends in half its epochs. More views
# come closer to on-the-fly augmentation and cost more passes and disk.
DEFAULT_VIEWS = 4


@dataclasses.dataclass
class StudyData:
    split: Split
    cache_dir: Path
    feature_cache: bool = True  # share frozen-backbone features between trials and workers
    augment_views: int = DEFAULT_VIEWS
    cache_limit: int = DEFAULT_LIMIT  # bytes
    _images: dict[int, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.augment_views < 1:
            raise StudyError(f"augment views {self.augment_views}: must be at least 1 (the augmented passes over "
                             "the training images cached per augmentation strength).")
        self.features = FeatureCache(self.cache_dir, limit=self.cache_limit) if self.feature_cache else None

    @property
    def n_classes(self) -> int:
        return len(self.split.classes)

    @functools.cached_property
    def fingerprint(self) -> str:
        """The split's fingerprint, taken once per process: it stats every image file."""
        return self.split.fingerprint()

    def images(self, image_size: int) -> np.ndarray:
        """(N, size, size, 3) uint8, a read-only memory map in split order, decoded on first use only."""
        if image_size not in self._images:
            self._images[image_size] = decoded_images(self.split, image_size=image_size, cache_dir=self.cache_dir,
                                                      fingerprint=self.fingerprint)
        return self._images[image_size]
