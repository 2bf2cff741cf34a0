"""A head per taxonomy level on the same features: one logits layer whose slices are softmaxed level by
level, and the loss that adds the levels' cross-entropies, each weighted.

The output is every level's probabilities side by side, (n, sum of the levels' class counts), so a
taxonomy model has one output like a single-level one, and everything that passes a head's output on
(the head trainers, checkpoints, the classifier around the backbone) handles both alike.

Targets are (n, 2 x levels) float32: each level's class index, then each level's loss weight for that
image, 0 where the image is not placed at that level (a fine class too small to split); so the weights
can change from trial to trial without a new loss, and a head trainer's traced epoch serves them all.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .._tf import keras as _keras

if TYPE_CHECKING:
    import keras

__all__ = ["level_softmax", "level_loss", "level_weights", "level_targets", "output_sizes", "register_level_classes"]


def level_weights(n_levels: int, fine_weight: float) -> tuple[float, ...]:
    """Each level's loss weight, coarse to fine: the finest level's ``fine_weight`` times the coarsest's,
    geometric in between, scaled to a mean of 1 so the loss keeps its size whatever the ratio."""
    raw = np.power(float(fine_weight), np.arange(n_levels) / max(n_levels - 1, 1))
    return tuple(float(w) for w in raw / raw.mean())


def level_targets(lineage: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Targets for ``lineage`` ((n, levels) class indices, -1 below where an image is placed)."""
    lineage = np.asarray(lineage)
    placed = lineage >= 0
    return np.concatenate([np.where(placed, lineage, 0), placed * np.asarray(weights, dtype=np.float64)],
                          axis=1).astype(np.float32)


def level_softmax(sizes: Sequence[int], *, name: str = "probabilities") -> keras.layers.Layer:
    return _classes()[0](sizes=list(sizes), name=name, dtype="float32")


def level_loss(sizes: Sequence[int]) -> keras.losses.Loss:
    return _classes()[1](sizes=list(sizes))


def output_sizes(model: keras.Model) -> tuple[int, ...] | None:
    """The class count per level of a taxonomy model (a head, or a classifier holding one); None for a
    single-level model."""
    for layer in reversed(model.layers):
        if isinstance(layer, _classes()[0]):
            return tuple(getattr(layer, "sizes"))
        if hasattr(layer, "layers") and (inner := output_sizes(layer)) is not None:
            return inner
    return None


def register_level_classes() -> None:
    """Make Keras know the layer and loss, so a saved taxonomy model loads."""
    _classes()


@functools.cache
def _classes() -> tuple[type, type]:
    keras = _keras()
    Layer: Any = keras.layers.Layer
    Loss: Any = keras.losses.Loss
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="lepidopt")
    class LevelSoftmax(Layer):
        """Softmax over each level's slice of the logits, the slices side by side."""

        def __init__(self, sizes: list[int], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.sizes = [int(s) for s in sizes]

        def call(self, logits: Any) -> Any:
            starts = np.cumsum([0] + self.sizes)
            return ops.concatenate([ops.softmax(logits[:, int(a):int(b)], axis=-1)
                                    for a, b in zip(starts[:-1], starts[1:])], axis=-1)

        def compute_output_shape(self, input_shape: tuple) -> tuple:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "sizes": self.sizes}

    @keras.saving.register_keras_serializable(package="lepidopt")
    class LevelLoss(Loss):
        """The levels' cross-entropies, each times the target's weight for that image and level, added."""

        def __init__(self, sizes: list[int], name: str = "level_loss", **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)
            self.sizes = [int(s) for s in sizes]

        def call(self, y_true: Any, y_pred: Any) -> Any:
            levels = len(self.sizes)
            y_true = ops.cast(y_true, "float32")
            starts = np.cumsum([0] + self.sizes)
            total = 0.0
            for level, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
                index = ops.cast(y_true[:, level], "int32")
                cross_entropy = keras.losses.sparse_categorical_crossentropy(index, y_pred[:, int(a):int(b)])
                total = total + y_true[:, levels + level] * cross_entropy
            return total

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "sizes": self.sizes}

    return LevelSoftmax, LevelLoss
