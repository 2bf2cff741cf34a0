"""The penultimate layer of an exported classifier: what the report clusters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = ["embedding_model", "embeddings_of"]


def embedding_model(classifier: keras.Model) -> keras.Model:
    """A model from images to the input of the head's last Dense layer (the pooled features when the
    head has no hidden layer, after its batch norm if it has one)."""
    from .._tf import keras

    k = keras()
    head = classifier.get_layer("head")
    inner = k.Model(head.input, head.get_layer("embedding_to_logits").input, name="head_embedding")
    return k.Model(classifier.input, inner(classifier.get_layer("pool").output), name="embedding")


def embeddings_of(model: keras.Model, batches: tf.data.Dataset) -> np.ndarray:
    return np.asarray(model.predict(batches, verbose=0), dtype=np.float32)
