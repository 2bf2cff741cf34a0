"""Two-phase training, one epoch at a time, so the caller can evaluate, report and stop between epochs."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import ModelError
from ._backbone import _keras

__all__ = ["make_optimizer", "compile_model", "extract_features", "fit_on_views", "epoch_batches", "fit_on_arrays", "predict_arrays", "finetune_epochs"]


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
    """Compile ``model`` with its optimizer's state already made: Keras otherwise makes it inside the first
    trace of the training step, and TensorFlow then traces that step a second time (~0.3 s a model)."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    model.optimizer.build(model.trainable_variables)


def extract_features(extractor, batches, *, augmentation=None) -> np.ndarray:
    """Pooled features for every batch of ``batches`` (a dataset of (images, labels)), in order.

    With ``augmentation`` each batch is augmented first (its random layers in training mode), so
    every call sees a fresh augmented view; the backbone stays in inference mode either way.
    """
    if augmentation is not None:
        batches = batches.map(lambda x, y: (augmentation(x, training=True), y))
    return extractor.predict(batches, verbose=0)


# A head's batch on cached features costs less than Keras's Python dispatch around it (~2.5 ms a step on
# 2 cores), so a long head run trains a whole epoch per call of the traced loop (steps_per_execution = the
# epoch's steps: a call never runs into the next epoch's batches; the losses are the same to the bit).
# Tracing that loop costs ~0.25 s more than tracing one step, so short runs (a few thousand images, pruned
# early) keep one step per call: from this many steps in the run on, the loop pays (benchmarks/head_epochs.py).
MULTI_STEP_FROM = 256


def fit_on_views(model, views: Sequence[np.ndarray], labels: np.ndarray, *, epochs: int, batch_size: int,
                 class_weight: dict[int, float] | None, seed: int, after_epoch: Callable[[int], None],
                 initial_epoch: int = 0) -> None:
    """Train ``model`` on in-memory inputs, epoch e on ``views[e % len(views)]`` (row i for ``labels[i]``),
    in one ``fit`` over one repeated tf.data pipeline: a ``fit`` per epoch, or a new iterator per
    epoch, costs more than an epoch of a head on a few thousand features. ``after_epoch(e)`` runs
    when epoch ``e`` ends and may raise to stop training. ``initial_epoch`` resumes a run.
    """
    weights = np.ones(len(labels), np.float32) if not class_weight else np.array(
        [class_weight[int(c)] for c in labels], np.float32)
    n = len(labels)
    batches = epoch_batches(views, labels, weights, seed=seed, batch_size=batch_size, first_epoch=initial_epoch,
                            epochs=epochs)
    steps = -(-n // batch_size)
    per_call = steps if steps * (epochs - initial_epoch) >= MULTI_STEP_FROM else 1
    if model.steps_per_execution != per_call:
        model.steps_per_execution = per_call
        model.train_function = None  # traced for the previous count
    model.fit(batches, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
              shuffle=False, callbacks=[_AfterEpoch(after_epoch)], verbose=0)  # the pipeline shuffles


def epoch_batches(views: Sequence[np.ndarray], labels: np.ndarray, weights: np.ndarray, *, seed: int, batch_size: int,
                  first_epoch: int, epochs: int):
    """One tf.data pipeline of (inputs, label, weight) batches for epochs ``first_epoch`` to ``epochs - 1``: epoch e
    on ``views[e % len(views)]``, its rows in an order drawn from (seed, e) alone, so every epoch has its own order
    and a run resumed at epoch e sees what an uninterrupted run would have."""
    from .._tf import tensorflow

    tf = tensorflow()
    stacked = tf.constant(np.stack(views))  # (views, n, d), float16 kept compact until each batch
    n = len(labels)

    def epoch_of(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=tf.stack([seed, epoch]))
        inputs = tf.gather(tf.gather(stacked, epoch % len(views)), order)
        return tf.data.Dataset.from_tensor_slices((inputs, tf.gather(labels, order), tf.gather(weights, order))) \
            .batch(batch_size)

    return (tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_of)
            .map(lambda x, y, w: (tf.cast(x, tf.float32), y, w)).prefetch(2))


def _AfterEpoch(after_epoch: Callable[[int], None]):
    keras = _keras()

    class AfterEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None) -> None:
            after_epoch(epoch)

    return AfterEpoch()


def fit_on_arrays(model, features_for_epoch: Callable[[int], np.ndarray], labels: np.ndarray, *, epochs: int,
                  batch_size: int, class_weight: dict[int, float] | None, seed: int,
                  after_epoch: Callable[[int], None], initial_epoch: int = 0) -> None:
    """Train ``model`` on inputs made per epoch or too large for memory (fresh augmented features;
    cached activations of the frozen prefix, read a batch at a time from a memory map), in one ``fit``.

    ``features_for_epoch(e)`` gives the inputs of epoch ``e``, row i for ``labels[i]``; ``after_epoch(e)``
    runs when epoch ``e`` ends and may raise to stop training.
    """
    keras = _keras()

    class EpochFeatures(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch, self.rng = initial_epoch, np.random.default_rng([seed, initial_epoch])
            self._start_epoch()

        def _start_epoch(self) -> None:
            self.features = features_for_epoch(self.epoch)
            self.order = self.rng.permutation(len(labels))

        def __len__(self) -> int:
            return -(-len(labels) // batch_size)

        def __getitem__(self, i: int):
            rows = np.sort(self.order[i * batch_size:(i + 1) * batch_size])  # sorted: cheaper reads of a memory map
            return np.asarray(self.features[rows], dtype=np.float32), labels[rows]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            if self.epoch < epochs:
                self._start_epoch()

    model.fit(EpochFeatures(), epochs=epochs, initial_epoch=initial_epoch, class_weight=class_weight,
              callbacks=[_AfterEpoch(after_epoch)], verbose=0)


def predict_arrays(model, inputs: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """The model's outputs for precomputed inputs, called directly: ``predict`` costs ~20 ms a call."""
    return np.concatenate([np.asarray(model(np.asarray(inputs[i:i + chunk], dtype=np.float32), training=False))
                           for i in range(0, len(inputs), chunk)])


def finetune_epochs(classifier, batches, *, epochs: int, class_weight: dict[int, float] | None,
                    initial_epoch: int = 0) -> Iterator[int]:
    """Phase 2: the classifier on images with its unfrozen stages training; yields each epoch finished."""
    for epoch in range(initial_epoch, epochs):
        classifier.fit(batches, epochs=1, class_weight=class_weight, shuffle=False, verbose=0)  # batches come shuffled
        yield epoch
