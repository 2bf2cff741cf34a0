"""What every trial of a study reads: the frozen split, its images decoded once per image size, and the
shared backbone features."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from ..data import Split, decoded_images
from ._feature_cache import FeatureCache

__all__ = ["StudyData"]


@dataclasses.dataclass
class StudyData:
    split: Split
    cache_dir: Path
    feature_cache: bool = True  # share frozen-backbone features between trials (when not augmenting)
    _images: dict[int, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.features = FeatureCache(self.cache_dir) if self.feature_cache else None

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
