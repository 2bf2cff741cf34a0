"""The new head: pooling, then 0..N dense blocks (units, activation, batch norm, dropout), then softmax."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from ..recipe import Recipe
from ._backbone import _keras
from ._levels import level_softmax

if TYPE_CHECKING:
    import keras

__all__ = ["build_head", "pooling_layer", "start_normalised"]


def pooling_layer(kind: str, *, name: str = "pool") -> keras.layers.Layer:
    keras = _keras()
    return (keras.layers.GlobalAveragePooling2D if kind == "avg" else keras.layers.GlobalMaxPooling2D)(name=name)


def build_head(recipe: Recipe, *, n_classes: int | tuple[int, ...], feature_dim: int,
               dropout: Callable[[float, str], keras.layers.Layer] | None = None) -> keras.Model:
    """A model from pooled backbone features (``feature_dim``) to class probabilities; with ``n_classes`` a
    tuple (a taxonomy's class count per level), to every level's probabilities side by side (``_levels``).

    ``dropout(rate, name)`` makes the dropout layers (default: Keras's Dropout); the head trainers
    use one whose rate is a variable.

    With ``head.batchnorm`` the features are normalised first: that is what lets even a randomly
    initialised backbone's features be separated, since their scale is arbitrary.
    """
    keras = _keras()
    dropout = dropout or (lambda rate, name: keras.layers.Dropout(rate, name=name))
    inputs = keras.Input((feature_dim,), name="features")
    x = inputs
    if recipe.head_batchnorm:
        x = keras.layers.BatchNormalization(name="head_input_bn")(x)
    for i in range(recipe.head_dense_layers):
        x = keras.layers.Dense(recipe.head_units, name=f"head_dense_{i}")(x)
        if recipe.head_batchnorm:
            x = keras.layers.BatchNormalization(name=f"head_bn_{i}")(x)
        x = keras.layers.Activation(recipe.head_activation, name=f"head_act_{i}")(x)
        if recipe.head_dropout > 0:
            x = dropout(recipe.head_dropout, f"head_dropout_{i}")(x)
    if recipe.head_dropout > 0 and recipe.head_dense_layers == 0:
        x = dropout(recipe.head_dropout, "head_dropout")(x)
    if isinstance(n_classes, tuple):
        x = keras.layers.Dense(sum(n_classes), name="embedding_to_logits")(x)
        outputs = level_softmax(n_classes)(x)
    else:
        x = keras.layers.Dense(n_classes, name="embedding_to_logits")(x)
        outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="head")


def start_normalised(head: keras.Model, features: np.ndarray) -> None:
    """Start the head's input batch norm at the statistics of ``features`` (the training features), rather
    than at mean 0 and variance 1: its moving statistics, which validation uses, would otherwise take hundreds
    of steps (momentum 0.99) to reach the features' scale, and a small collection's head would be scored at
    chance for its first tens of epochs."""
    layer = head.get_layer("head_input_bn")
    values = np.asarray(features, dtype=np.float64)
    layer.moving_mean.assign(values.mean(axis=0).astype("float32"))
    layer.moving_variance.assign(values.var(axis=0).astype("float32"))
