"""Phase 2: fine-tuning the unfrozen stages, on images or, where it pays, on cached activations.

When only conv5 trains and nothing is augmented, everything below conv5 computes the same activations
in every epoch of every trial. They are then computed once per study (conv4's output: 1024 x (size/16)^2
values per image, 32 KB at 64 px and 392 KB at 224 px in float16) and conv5 trains on them, which
saves the frozen prefix's forward pass in every epoch. Augmented trials and deeper unfreezing (whose
prefix would be conv3's output, twice as large for a smaller saving) train on images.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..data import image_batches
from ..recipe import Recipe
from ._checkpoint import Checkpoints, Saved
from ._labels import TrialLabels
from ._phase1 import Network
from ._study_data import StudyData

if TYPE_CHECKING:
    import keras

__all__ = ["finetune", "uses_cached_prefix"]


def uses_cached_prefix(recipe: Recipe, data: StudyData) -> bool:
    return data.features is not None and recipe.finetune_unfreeze == "conv5" and recipe.augment_strength == 0.0


def finetune(recipe: Recipe, data: StudyData, network: Network, head: keras.Model, labels: TrialLabels, *,
             seed: int, after_epoch: Callable[..., None], timings: dict[str, float],
             checkpoints: Checkpoints | None = None, resume: Saved | None = None) -> None:
    """Fine-tune the recipe's unfrozen stages together with ``head`` on the trial's ``labels``;
    ``after_epoch(phase, epoch, val probabilities, model)`` follows every epoch. The backbone's own weights
    are the ones trained. With ``resume`` (a phase-2 checkpoint) the model trained restarts from it."""
    from ..model import build_augmentation, build_classifier, compile_model, finetune_epochs, unfreeze

    unfreeze(network.backbone, recipe.finetune_unfreeze)
    first_epoch = 0 if resume is None else resume.epoch + 1

    def prepared(model: keras.Model) -> keras.Model:
        if checkpoints is not None and resume is not None:
            checkpoints.restore(model, resume)
        return model

    if uses_cached_prefix(recipe, data) and _finetune_on_activations(
            recipe, data, network, head, labels, seed=seed, after_epoch=after_epoch, timings=timings,
            prepared=prepared, first_epoch=first_epoch):
        return
    images = data.images(recipe.image_size)
    augmentation = build_augmentation(recipe.augment_strength, seed=seed)
    classifier = build_classifier(network.backbone, head, pooling=recipe.head_pooling, augmentation=augmentation)
    compile_model(classifier, optimizer=recipe.optimizer, learning_rate=recipe.finetune_lr)
    prepared(classifier)

    n_images = len(data.split.paths)
    train_idx, val_idx = labels.train_idx, labels.val_idx
    targets = np.zeros((n_images, *labels.y_train.shape[1:]), labels.y_train.dtype)  # by image, as batches read them
    targets[train_idx] = labels.y_train
    sample_weight = None
    if labels.sample_weight is not None:
        sample_weight = np.zeros(n_images, np.float32)
        sample_weight[train_idx] = labels.sample_weight
    train = image_batches(images, targets, train_idx, batch_size=recipe.batch_size, shuffle_seed=seed + first_epoch,
                          sample_weight=sample_weight)
    val = image_batches(images, data.split.labels, val_idx, batch_size=recipe.batch_size)
    for epoch in finetune_epochs(classifier, train, epochs=recipe.epochs_finetune, class_weight=labels.class_weight,
                                 initial_epoch=first_epoch):
        after_epoch("finetune", epoch, classifier.predict(val, verbose=0), classifier)


def _finetune_on_activations(recipe: Recipe, data: StudyData, network: Network, head: keras.Model,
                             labels: TrialLabels, *, seed: int, after_epoch: Callable[..., None],
                             timings: dict[str, float],
                             prepared: Callable[[keras.Model], keras.Model], first_epoch: int) -> bool:
    """False, having trained nothing, when the activations would not fit within the cache's limit."""
    from ..model import (PREFIX_OUTPUT, build_top_classifier, compile_model, fit_on_arrays, predict_arrays,
                         split_backbone)

    prefix, top = split_backbone(network.backbone)
    split, images = data.split, data.images(recipe.image_size)

    def chunks() -> Iterator[np.ndarray]:
        for x, _ in image_batches(images, split.labels, np.arange(len(split.paths)), batch_size=recipe.batch_size):
            yield np.asarray(prefix(x, training=False), dtype=np.float16)

    key = data.feature_key(recipe, augment=0.0, view=0, activations=PREFIX_OUTPUT)
    started = time.perf_counter()
    if data.features is None:  # uses_cached_prefix: only with the feature cache
        return False
    activations = data.features.get_streamed(key, (len(split.paths), *prefix.output_shape[1:]), chunks)
    timings["prefix"] = time.perf_counter() - started
    if activations is None:
        return False
    classifier = build_top_classifier(top, head, pooling=recipe.head_pooling)
    compile_model(classifier, optimizer=recipe.optimizer, learning_rate=recipe.finetune_lr)
    prepared(classifier)
    rows = _Rows(activations, labels.train_idx)
    val = _Rows(activations, labels.val_idx)
    fit_on_arrays(classifier, lambda epoch: rows, labels.y_train, epochs=recipe.epochs_finetune,
                  batch_size=recipe.batch_size, class_weight=labels.class_weight, seed=seed, initial_epoch=first_epoch,
                  sample_weight=labels.sample_weight,
                  after_epoch=lambda epoch: after_epoch("finetune", epoch, predict_arrays(classifier, val, chunk=256),
                                                        classifier))
    return True


class _Rows:
    """Rows ``index`` of a (memory-mapped) array, read only when sliced."""

    def __init__(self, array: np.ndarray, index: np.ndarray) -> None:
        self.array, self.index = array, np.asarray(index)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        return np.asarray(self.array[self.index[rows]])
