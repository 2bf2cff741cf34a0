"""Two-phase training, one epoch at a time, so the caller can evaluate, report and stop between epochs."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from ..errors import ModelError
from ._backbone import _keras

__all__ = ["make_optimizer", "compile_model", "extract_features", "head_epochs", "finetune_epochs"]


def make_optimizer(name: str, learning_rate: float):
    keras = _keras()
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    raise ModelError(f"optimizer {name!r}: must be one of adam, adamw, sgd.")


def compile_model(model, *, optimizer: str, learning_rate: float) -> None:
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )


def extract_features(extractor, batches, *, augmentation=None) -> np.ndarray:
    """Pooled features for every batch of ``batches`` (a dataset of (images, labels)), in order.

    With ``augmentation`` each batch is augmented first (its random layers in training mode), so
    every call sees a fresh augmented view; the backbone stays in inference mode either way.
    """
    if augmentation is not None:
        batches = batches.map(lambda x, y: (augmentation(x, training=True), y))
    return extractor.predict(batches, verbose=0)


def head_epochs(head, features_for_epoch: Callable[[int], np.ndarray], labels: np.ndarray, *,
                epochs: int, batch_size: int, class_weight: dict[int, float] | None) -> Iterator[int]:
    """Phase 1: the head on pooled features, one epoch per step; yields the epoch just finished."""
    for epoch in range(epochs):
        head.fit(features_for_epoch(epoch), labels, batch_size=batch_size, epochs=1, shuffle=True,
                 class_weight=class_weight, verbose=0)
        yield epoch


def finetune_epochs(classifier, batches, *, epochs: int, class_weight: dict[int, float] | None) -> Iterator[int]:
    """Phase 2: the classifier on images with its unfrozen stages training; yields each epoch finished."""
    for epoch in range(epochs):
        classifier.fit(batches, epochs=1, class_weight=class_weight, shuffle=False, verbose=0)  # batches come shuffled
        yield epoch
