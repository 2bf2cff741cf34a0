"""One trial: sample the training split, train the head on backbone features, then fine-tune if asked."""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from typing import Any

import numpy as np

from ..data import class_weights, image_batches, undersample
from ..errors import StudyError
from ..recipe import Recipe
from ._feature_cache import cache_key
from ._metrics import classification_metrics, objective_direction
from ._reporter import Reporter, TrialStopped
from ._study_data import StudyData

__all__ = ["TrialResult", "run_trial"]

log = logging.getLogger("lepidopt")


@dataclasses.dataclass(frozen=True)
class TrialResult:
    value: float
    metrics: dict[str, float]  # validation metrics after the last epoch
    history: list[dict[str, Any]]  # one entry per epoch of both phases
    timings: dict[str, float]  # seconds per stage
    n_train: int  # training images after undersampling
    model: Any = None  # with keep_model: the trained classifier, images in [0, 255] -> probabilities


def run_trial(recipe: Recipe, data: StudyData, reporter: Reporter, *, seed: int,
              objective: str = "balanced_accuracy", keep_model: bool = False) -> TrialResult:
    """Train one recipe on the study's data and return its validation score.

    Reports the objective after every epoch of both phases; raises TrialStopped when the reporter
    asks to stop. Phase 1 trains the head on pooled features of the frozen backbone (computed once
    when there is no augmentation, afresh every epoch when there is); phase 2 fine-tunes the
    unfrozen stages on images at their own learning rate. With ``keep_model`` the result carries
    the trained classifier (without augmentation layers), ready to save.
    """
    objective_direction(objective)
    if recipe.total_epochs == 0:
        raise StudyError("recipe trains for zero epochs: set epochs_head (or epochs_finetune with an unfrozen stage) above 0.")
    from ..model import (build_augmentation, build_backbone, build_classifier, build_feature_extractor, build_head,
                         compile_model, extract_features, finetune_epochs, head_epochs, unfreeze, weights_identity)
    from .._tf import keras as import_keras

    keras = import_keras()
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    split, images = data.split, data.images(recipe.image_size)
    timings["decode"] = time.perf_counter() - clock

    train_all = split.indices("train")
    keep = undersample(split.labels[train_all], ratio=recipe.sampling_ratio, seed=seed)
    train_idx, val_idx = train_all[keep], split.indices("val")
    y_train, y_val = split.labels[train_idx], split.labels[val_idx]
    weights = class_weights(y_train, mode=recipe.sampling_class_weight, n_classes=data.n_classes)

    clock = time.perf_counter()
    backbone = build_backbone(weights=recipe.weights, image_size=recipe.image_size)
    augmentation = build_augmentation(recipe.augment_strength, seed=seed)
    extractor = build_feature_extractor(backbone, pooling=recipe.head_pooling)
    timings["build"] = time.perf_counter() - clock

    def batches(indices, shuffle_seed=None):
        return image_batches(images, split.labels, indices, batch_size=recipe.batch_size, shuffle_seed=shuffle_seed)

    clock = time.perf_counter()
    cache = data.features
    if augmentation is None and cache is not None:
        key = cache_key(data=data.fingerprint, backbone="resnet50", weights=weights_identity(recipe.weights),
                        image_size=recipe.image_size, pooling=recipe.head_pooling, augment=0.0, view=0)
        every = cache.get(key, lambda: extract_features(extractor, batches(np.arange(len(split.paths)))))
        val_features = np.asarray(every[val_idx], dtype=np.float32)
        fixed_train = np.asarray(every[train_idx], dtype=np.float32)
    else:
        val_features = extract_features(extractor, batches(val_idx))
        fixed_train = None if augmentation else extract_features(extractor, batches(train_idx))
    timings["features"] = time.perf_counter() - clock

    def train_features(epoch: int) -> np.ndarray:
        if fixed_train is not None:
            return fixed_train
        started = time.perf_counter()
        out = extract_features(extractor, batches(train_idx), augmentation=augmentation)
        timings["features"] += time.perf_counter() - started
        return out

    head = build_head(recipe, n_classes=data.n_classes, feature_dim=int(val_features.shape[1]))
    compile_model(head, optimizer=recipe.optimizer, learning_rate=recipe.head_lr)
    history: list[dict[str, Any]] = []
    step = -1
    metrics: dict[str, float] = {}

    def after_epoch(phase: str, epoch: int, probabilities: np.ndarray) -> None:
        nonlocal step, metrics
        step += 1
        metrics = classification_metrics(y_val, probabilities)
        value = metrics[objective]
        history.append({"phase": phase, "epoch": epoch, "step": step, **metrics})
        log.debug("%s epoch %d: %s", phase, epoch, metrics)
        reporter.report(value, step)
        if reporter.should_stop():
            raise TrialStopped(step, value, history)

    clock, features_before = time.perf_counter(), timings["features"]
    for epoch in head_epochs(head, train_features, y_train, epochs=recipe.epochs_head,
                             batch_size=recipe.batch_size, class_weight=weights):
        after_epoch("head", epoch, head.predict(val_features, batch_size=256, verbose=0))
    timings["head"] = time.perf_counter() - clock - (timings["features"] - features_before)

    if recipe.finetune_unfreeze != "none" and recipe.epochs_finetune > 0:
        clock = time.perf_counter()
        unfreeze(backbone, recipe.finetune_unfreeze)
        classifier = build_classifier(backbone, head, pooling=recipe.head_pooling, augmentation=augmentation)
        compile_model(classifier, optimizer=recipe.optimizer, learning_rate=recipe.finetune_lr)
        for epoch in finetune_epochs(classifier, batches(train_idx, shuffle_seed=seed), epochs=recipe.epochs_finetune,
                                     class_weight=weights):
            after_epoch("finetune", epoch, classifier.predict(batches(val_idx), verbose=0))
        timings["finetune"] = time.perf_counter() - clock

    value = metrics[objective]
    gc.collect()
    model = build_classifier(backbone, head, pooling=recipe.head_pooling) if keep_model else None
    return TrialResult(value=value, metrics=metrics, history=history, timings=timings, n_train=len(train_idx),
                       model=model)
