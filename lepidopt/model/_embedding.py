"""The penultimate layer of a classifier (what the report clusters), and the model a user is given: any image
size in, resized inside the model the way the study resized, class probabilities out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._backbone import _keras

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = ["embedding_model", "embeddings_of", "build_deployable", "build_servable", "deployable_embedder",
           "DEPLOYABLE_RESIZE"]

DEPLOYABLE_RESIZE = "squash_to_square"


def embedding_model(classifier: keras.Model) -> keras.Model:
    """A model from images to the input of the head's last Dense layer (the pooled features when the
    head has no hidden layer, after its batch norm if it has one)."""
    k = _keras()
    head = classifier.get_layer("head")
    inner = k.Model(head.input, head.get_layer("embedding_to_logits").input, name="head_embedding")
    return k.Model(classifier.input, inner(classifier.get_layer("pool").output), name="embedding")


def embeddings_of(model: keras.Model, batches: tf.data.Dataset) -> np.ndarray:
    return np.asarray(model.predict(batches, verbose=0), dtype=np.float32)


def build_deployable(classifier: keras.Model, *, image_size: int) -> keras.Model:
    """``classifier`` behind a resize: images of any height and width, uint8 or float in [0, 255], squashed to
    ``image_size`` square (bilinear; an image of that size passes unchanged). Antialiasing would follow
    Pillow's downscaling more closely, but its TensorFlow op converts to neither ONNX nor LiteRT.

    The classifier is called in inference mode here, not left to the caller: SavedModel, ONNX and LiteRT
    trace the model without a training flag, and the head's batch norm would then use batch statistics."""
    k = _keras()
    images = k.Input((None, None, 3), name="images")
    squashed = k.layers.Resizing(image_size, image_size, interpolation="bilinear", antialias=False,
                                 name=DEPLOYABLE_RESIZE)(images)
    return k.Model(images, classifier(squashed, training=False), name="lepidopt_model")


def build_servable(deployable: keras.Model) -> keras.Model:
    """``deployable`` with two named outputs, ``probabilities`` and ``embeddings``, computed once: what
    SavedModel, ONNX and LiteRT export, so each format can both classify and embed. Named, because the
    converters do not keep the order of a list of outputs."""
    k = _keras()
    head = deployable.get_layer("classifier").get_layer("head")
    embeddings = deployable_embedder(deployable).output
    probabilities = head.get_layer("probabilities")(head.get_layer("embedding_to_logits")(embeddings))
    return k.Model(deployable.input, {"probabilities": probabilities, "embeddings": embeddings},
                   name="lepidopt_servable")


def deployable_embedder(deployable: keras.Model) -> keras.Model:
    """The embeddings of ``deployable``'s classifier, from the same any-size input."""
    k = _keras()
    classifier = deployable.get_layer("classifier")
    squashed = deployable.get_layer(DEPLOYABLE_RESIZE).output
    embeddings = embedding_model(classifier)(squashed, training=False)
    return k.Model(deployable.input, embeddings, name="lepidopt_embedding")
