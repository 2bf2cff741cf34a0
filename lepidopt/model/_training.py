"""Two-phase training, one epoch at a time, so the caller can evaluate, report and stop between epochs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

import numpy as np

from ..errors import ModelError
from ._backbone import _keras
from ._levels import level_loss, output_sizes

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = ["make_optimizer", "compile_model", "extract_features", "fit_on_arrays", "predict_arrays", "finetune_epochs"]


class Rows(Protocol):
    """Inputs read some rows at a time (a slice or an array of row numbers), such as rows of a memory map."""

    def __len__(self) -> int: ...

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray: ...


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    keras = _keras()
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    raise ModelError(f"optimizer {name!r}", "must be one of adam, adamw, sgd.")


def compile_model(model: keras.Model, *, optimizer: str, learning_rate: float) -> None:
    """Compile ``model`` with its optimizer's state already made: Keras otherwise makes it inside the first
    trace of the training step, and TensorFlow then traces that step a second time (~0.3 s a model).
    A taxonomy model (``_levels``) trains on the levels' weighted cross-entropies."""
    sizes = output_sizes(model)
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy" if sizes is None else level_loss(sizes),
        jit_compile=False,
    )
    model.optimizer.build(model.trainable_variables)


def extract_features(extractor: keras.Model, batches: tf.data.Dataset, *,
                     augmentation: keras.layers.Layer | None = None) -> np.ndarray:
    """Pooled features for every batch of ``batches`` (a dataset of (images, labels)), in order.

    With ``augmentation`` each batch is augmented first (its random layers in training mode), so
    every call sees a fresh augmented view; the backbone stays in inference mode either way.
    """
    if augmentation is not None:
        batches = batches.map(lambda x, y: (augmentation(x, training=True), y))
    return extractor.predict(batches, verbose=0)


def _AfterEpoch(after_epoch: Callable[[int], None]) -> keras.callbacks.Callback:
    keras = _keras()

    Callback: Any = keras.callbacks.Callback

    class AfterEpoch(Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            after_epoch(epoch)

    return AfterEpoch()


def fit_on_arrays(model: keras.Model, features_for_epoch: Callable[[int], np.ndarray | Rows], labels: np.ndarray, *,
                  epochs: int, batch_size: int, class_weight: dict[int, float] | None, seed: int,
                  after_epoch: Callable[[int], None], initial_epoch: int = 0,
                  sample_weight: np.ndarray | None = None) -> None:
    """Train ``model`` on inputs made per epoch or too large for memory (fresh augmented features;
    cached activations of the frozen prefix, read a batch at a time from a memory map), in one ``fit``.

    ``features_for_epoch(e)`` gives the inputs of epoch ``e``, row i for ``labels[i]`` (and
    ``sample_weight[i]``, which a taxonomy model's targets need in place of ``class_weight``);
    ``after_epoch(e)`` runs when epoch ``e`` ends and may raise to stop training.
    """
    keras = _keras()

    PyDataset: Any = keras.utils.PyDataset

    class EpochFeatures(PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch, self.rng = initial_epoch, np.random.default_rng([seed, initial_epoch])
            self._start_epoch()

        def _start_epoch(self) -> None:
            self.features = features_for_epoch(self.epoch)
            self.order = self.rng.permutation(len(labels))

        def __len__(self) -> int:
            return -(-len(labels) // batch_size)

        def __getitem__(self, i: int) -> tuple[np.ndarray, ...]:
            rows = np.sort(self.order[i * batch_size:(i + 1) * batch_size])  # sorted: cheaper reads of a memory map
            if sample_weight is not None:
                return np.asarray(self.features[rows], dtype=np.float32), labels[rows], sample_weight[rows]
            return np.asarray(self.features[rows], dtype=np.float32), labels[rows]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            if self.epoch < epochs:
                self._start_epoch()

    # shuffle=False: the order is EpochFeatures' own, drawn from (seed, epoch); Keras would shuffle the batches
    # again with Python's global random state, so a trial would train differently after whatever reseeded it.
    model.fit(EpochFeatures(), epochs=epochs, initial_epoch=initial_epoch, class_weight=class_weight,
              callbacks=[_AfterEpoch(after_epoch)], verbose=0, shuffle=False)


def predict_arrays(model: keras.Model, inputs: np.ndarray | Rows, *, chunk: int = 4096) -> np.ndarray:
    """The model's outputs for precomputed inputs, called directly: ``predict`` costs ~20 ms a call."""
    return np.concatenate([np.asarray(model(np.asarray(inputs[i:i + chunk], dtype=np.float32), training=False))
                           for i in range(0, len(inputs), chunk)])


def finetune_epochs(classifier: keras.Model, batches: tf.data.Dataset, *, epochs: int,
                    class_weight: dict[int, float] | None, initial_epoch: int = 0) -> Iterator[int]:
    """Phase 2: the classifier on images with its unfrozen stages training; yields each epoch finished."""
    for epoch in range(initial_epoch, epochs):
        classifier.fit(batches, epochs=1, class_weight=class_weight, shuffle=False, verbose=0)  # batches come shuffled
        yield epoch
