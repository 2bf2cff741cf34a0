"""Heads trained on in-memory features by one traced epoch per architecture, kept across a process's trials.

Keras traces every new model's training step on its first epoch (~0.4 s on 2 cores: more than the other
epochs of a demo head together) and calls it once per batch (~1 ms of dispatch a step). A trainer keeps
one compiled head per architecture and one traced function that runs a whole epoch, any number of rows,
and returns the validation outputs; each trial starts it from the trial's own freshly built head, so it
trains to the bit as that head would under ``Model.fit``.
"""

from __future__ import annotations

import collections
import functools
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..recipe import Recipe
from ._backbone import _keras
from ._head import build_head
from ._training import compile_model

if TYPE_CHECKING:
    import keras
    from tensorflow import Tensor

__all__ = ["HeadTrainer", "HeadTrainers", "shuffled_epoch"]


class HeadTrainers:
    """At most ``capacity`` trainers, one per head architecture and optimizer, the least recently used
    dropped first."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._trainers: collections.OrderedDict[tuple, HeadTrainer] = collections.OrderedDict()

    def trainer(self, recipe: Recipe, *, n_classes: int | tuple[int, ...], feature_dim: int) -> HeadTrainer:
        key = (feature_dim, n_classes, recipe.head_dense_layers, recipe.head_units, recipe.head_activation,
               recipe.head_batchnorm, recipe.head_dropout > 0, recipe.optimizer)
        trainer = self._trainers.pop(key, None) or HeadTrainer(recipe, n_classes=n_classes, feature_dim=feature_dim)
        self._trainers[key] = trainer
        while len(self._trainers) > self.capacity:
            self._trainers.popitem(last=False)
        return trainer

    def architectures(self) -> set[tuple]:
        """The head architectures this holds a trainer (a traced epoch) for."""
        return set(self._trainers)

    def forget(self, architecture: tuple) -> None:
        """Drop the trainer of ``architecture``: the next trial of it traces its epoch again."""
        self._trainers.pop(architecture, None)


class HeadTrainer:
    """A compiled head of one architecture (dropout rates in variables) and its traced epoch."""

    def __init__(self, recipe: Recipe, *, n_classes: int | tuple[int, ...], feature_dim: int) -> None:
        self.feature_dim = feature_dim
        self.target_width = 2 * len(n_classes) if isinstance(n_classes, tuple) else None  # see _levels
        self.model = build_head(recipe, n_classes=n_classes, feature_dim=feature_dim, dropout=_variable_rate_dropout)
        compile_model(self.model, optimizer=recipe.optimizer, learning_rate=recipe.head_lr)
        self._epochs: dict[str, Callable] = {}  # by the features' dtype

    def start(self, head: keras.Model, *, learning_rate: float) -> None:
        """Make the model what ``head`` (this architecture, built and not trained) would be, compiled afresh
        with ``learning_rate``: its weights, its dropout rates and seed states, an optimizer state as a new
        model's."""
        keras = _keras()
        model = self.model
        model.set_weights(head.get_weights())
        for variable in model.optimizer.variables:  # the step count, the learning rate and the slots
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
        model.optimizer.learning_rate = learning_rate
        theirs = [layer for layer in head.layers if isinstance(layer, keras.layers.Dropout)]
        for ours, their in zip([layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)], theirs,
                               strict=True):
            ours.set_rate(their.rate)
            ours.seed_generator.state.assign(their.seed_generator.state.value)
        model.reset_metrics()

    def fit(self, views: Sequence[np.ndarray], labels: np.ndarray, *, val: np.ndarray, epochs: int, batch_size: int,
            class_weight: dict[int, float] | None, seed: int, after_epoch: Callable[[int, np.ndarray], None],
            initial_epoch: int = 0, sample_weight: np.ndarray | None = None) -> None:
        """Train epochs ``initial_epoch`` to ``epochs - 1``, epoch e on ``views[e % len(views)]`` (row i for
        ``labels[i]``, a taxonomy head's targets, and ``sample_weight[i]`` if given, else the weight of its
        class) in an order drawn from (seed, e) alone, so a resumed run sees what an uninterrupted one would
        have. ``after_epoch(e, outputs on val)`` runs after each epoch and may raise to stop training."""
        from .._tf import tensorflow

        tf = tensorflow()
        dtype = np.asarray(views[0][:0]).dtype
        epoch_function = self._epoch_function(dtype.name)
        labels = np.asarray(labels, np.int64 if self.target_width is None else np.float32)
        if sample_weight is not None:
            weights = np.asarray(sample_weight, np.float32)
        else:
            weights = np.ones(len(labels), np.float32) if not class_weight else np.array(
                [class_weight[int(c)] for c in labels], np.float32)
        inputs: dict[int, object] = {}  # each view made a tensor once, when an epoch first needs it
        val = tf.constant(np.asarray(val, dtype))
        labels, weights, size = tf.constant(labels), tf.constant(weights), tf.constant(batch_size, tf.int64)
        for epoch in range(initial_epoch, epochs):
            v = epoch % len(views)
            if v not in inputs:
                inputs[v] = tf.constant(np.asarray(views[v], dtype))
            outputs = epoch_function(inputs[v], labels, weights, tf.constant([seed, epoch], tf.int64), size, val)
            after_epoch(epoch, outputs.numpy())

    def _epoch_function(self, dtype: str) -> Callable[..., Tensor]:
        if dtype not in self._epochs:
            from .._tf import tensorflow

            tf = tensorflow()
            targets = tf.TensorSpec((None,), tf.int64) if self.target_width is None else \
                tf.TensorSpec((None, self.target_width), tf.float32)
            self._epochs[dtype] = tf.function(self._epoch, input_signature=[
                tf.TensorSpec((None, self.feature_dim), dtype), targets,
                tf.TensorSpec((None,), tf.float32), tf.TensorSpec((2,), tf.int64), tf.TensorSpec((), tf.int64),
                tf.TensorSpec((None, self.feature_dim), dtype)])
        return self._epochs[dtype]

    def _epoch(self, inputs: Tensor, labels: Tensor, weights: Tensor, seed: Tensor, batch_size: Tensor,
               val: Tensor) -> Tensor:
        """One epoch of Keras's own training step, a batch at a time, then the validation outputs."""
        from .._tf import tensorflow

        tf = tensorflow()
        inputs, labels, weights = shuffled_epoch(inputs, labels, weights, seed)
        n = tf.shape(labels, out_type=tf.int64)[0]
        for step in tf.range((n + batch_size - 1) // batch_size):
            rows = slice(step * batch_size, (step + 1) * batch_size)
            self.model.train_step((tf.cast(inputs[rows], tf.float32), labels[rows], weights[rows]))
        return self.model(tf.cast(val, tf.float32), training=False)


def shuffled_epoch(inputs: Tensor | np.ndarray, labels: Tensor | np.ndarray, weights: Tensor | np.ndarray,
                   seed: Tensor | np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
    """``inputs``, ``labels`` and ``weights`` (row i of each together) in the order of the epoch whose
    stateless seed is ``seed``, (trial seed, epoch): every epoch has its own order, the same on every run."""
    from .._tf import tensorflow

    tf = tensorflow()
    order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(labels, out_type=tf.int64)[0]), seed=seed)
    return tf.gather(inputs, order), tf.gather(labels, order), tf.gather(weights, order)


def _variable_rate_dropout(rate: float, name: str) -> keras.layers.Dropout:
    return _variable_rate_dropout_class()(rate, name=name)


@functools.cache
def _variable_rate_dropout_class() -> type[keras.layers.Dropout]:
    keras = _keras()
    from .._tf import tensorflow

    tf = tensorflow()

    Dropout: Any = keras.layers.Dropout

    class VariableRateDropout(Dropout):
        """Keras's Dropout with its rate in variables, so one traced step serves every rate: the same mask
        from the same seed state and the same scaling, to the bit. The variables are not weights."""

        def __init__(self, rate: float, **kwargs: Any) -> None:
            super().__init__(rate, **kwargs)
            self.rate_variable = tf.Variable(0.0, trainable=False, dtype=tf.float32)
            self.scale_variable = tf.Variable(1.0, trainable=False, dtype=tf.float32)
            self.set_rate(rate)

        def set_rate(self, rate: float) -> None:
            self.rate = rate
            self.rate_variable.assign(rate)
            # Computed in double, as TensorFlow scales for a rate given as a number; scaling by a rate held
            # in a float32 tensor differs in the last bit, which Adam magnifies.
            self.scale_variable.assign(1 / (1 - rate))

        def call(self, inputs: Tensor, training: bool = False) -> Tensor:
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
