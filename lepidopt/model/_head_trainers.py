"""Compiled heads kept across a process's trials. Keras traces a new model's training step on its first
epoch (~0.5 s on 2 cores, a third of a head trial on the demo collection); trials whose heads share an
architecture share one traced model instead, started from the trial's freshly built head."""

from __future__ import annotations

import collections
import functools

from ..recipe import Recipe
from ._backbone import _keras
from ._head import build_head
from ._training import compile_model

__all__ = ["HeadTrainers"]


class HeadTrainers:
    """At most ``capacity`` compiled heads, one per architecture and optimizer, the least recently used
    dropped first."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._models: collections.OrderedDict = collections.OrderedDict()

    def start(self, head, recipe: Recipe, *, n_classes: int, feature_dim: int):
        """A compiled model to train in place of ``head`` (built for ``recipe``, not yet trained): the same
        layers, weights and dropout seeds, ``recipe``'s dropout rate, optimizer and learning rate, and an
        optimizer state as fresh as a new model's. It trains exactly as ``head`` compiled alone would."""
        key = (feature_dim, n_classes, recipe.head_dense_layers, recipe.head_units, recipe.head_activation,
               recipe.head_batchnorm, recipe.head_dropout > 0, recipe.optimizer)
        model = self._models.pop(key, None)
        if model is None:
            model = build_head(recipe, n_classes=n_classes, feature_dim=feature_dim, dropout=_variable_rate_dropout)
            compile_model(model, optimizer=recipe.optimizer, learning_rate=recipe.head_lr)
        self._models[key] = model
        while len(self._models) > self.capacity:
            self._models.popitem(last=False)

        keras = _keras()
        model.set_weights(head.get_weights())
        for variable in model.optimizer.variables:  # the step count, the learning rate and the slots
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
        model.optimizer.learning_rate = recipe.head_lr
        dropouts = [layer for layer in head.layers if isinstance(layer, keras.layers.Dropout)]
        for ours, theirs in zip([layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)], dropouts,
                                strict=True):
            ours.set_rate(theirs.rate)
            ours.seed_generator.state.assign(theirs.seed_generator.state.value)
        model.stop_training = False
        return model


def _variable_rate_dropout(rate: float, name: str):
    return _variable_rate_dropout_class()(rate, name=name)


@functools.cache
def _variable_rate_dropout_class():
    keras = _keras()
    from .._tf import tensorflow

    tf = tensorflow()

    class VariableRateDropout(keras.layers.Dropout):
        """Keras's Dropout with its rate in variables, so one traced training step serves every rate: the same
        mask from the same seed state and the same scaling, to the bit. The variables are not weights."""

        def __init__(self, rate: float, **kwargs) -> None:
            super().__init__(rate, **kwargs)
            self.rate_variable = tf.Variable(0.0, trainable=False, dtype=tf.float32)
            self.scale_variable = tf.Variable(1.0, trainable=False, dtype=tf.float32)
            self.set_rate(rate)

        def set_rate(self, rate: float) -> None:
            self.rate_variable.assign(rate)
            self.scale_variable.assign(1 / (1 - rate))  # in double, as TensorFlow scales for a rate given as a number

        def call(self, inputs, training=False):
            if not training:
                return inputs
            seed = self.seed_generator.next()
            if seed.dtype != tf.int32:  # as Keras's TensorFlow backend casts it
                seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
            rate = tf.cast(self.rate_variable, inputs.dtype)
            kept = tf.nn.experimental.stateless_dropout(tf.ones_like(inputs), rate=rate, noise_shape=tf.shape(inputs),
                                                        seed=seed) > 0
            return tf.where(kept, inputs * tf.cast(self.scale_variable, inputs.dtype), tf.zeros_like(inputs))

    return VariableRateDropout
