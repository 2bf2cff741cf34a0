"""Putting the pieces together: the feature extractor (phase 1) and the full classifier (phase 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._backbone import _keras
from ._head import pooling_layer

if TYPE_CHECKING:
    import keras

__all__ = ["build_feature_extractor", "build_classifier", "split_backbone", "build_top_classifier", "PREFIX_OUTPUT"]

PREFIX_OUTPUT = "conv4_block6_out"  # where conv5 starts: below it, fine-tuning conv5 changes nothing


def build_feature_extractor(backbone: keras.Model, *, pooling: str) -> keras.Model:
    """Images -> frozen backbone -> pooled features: the part a feature cache can store, since its
    output does not depend on the head. Augmented features come from augmented input batches."""
    keras = _keras()
    inputs = keras.Input(backbone.input_shape[1:], name="image")
    x = backbone(inputs, training=False)
    outputs = pooling_layer(pooling)(x)
    return keras.Model(inputs, outputs, name="feature_extractor")


def build_classifier(backbone: keras.Model, head: keras.Model, *, pooling: str,
                     augmentation: keras.layers.Layer | None = None) -> keras.Model:
    """Images -> [augmentation] -> backbone (BatchNorm in inference mode) -> pooling -> head."""
    keras = _keras()
    inputs = keras.Input(backbone.input_shape[1:], name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = backbone(x, training=False)
    x = pooling_layer(pooling)(x)
    outputs = head(x)
    return keras.Model(inputs, outputs, name="classifier")


def split_backbone(backbone: keras.Model, *, at: str = PREFIX_OUTPUT) -> tuple[keras.Model, keras.Model]:
    """(prefix, top): images -> activations of layer ``at``, and those activations -> the backbone's
    feature map. Both are views of the backbone's own layers, so training ``top`` trains the backbone."""
    keras = _keras()
    resnet = backbone.get_layer("resnet50")
    cut = resnet.get_layer(at).output
    below = keras.Model(resnet.input, cut, name="below_" + at)
    inputs = keras.Input(backbone.input_shape[1:], name="image")
    prefix = keras.Model(inputs, below(backbone.get_layer("resnet_preprocess")(inputs), training=False), name="prefix")
    return prefix, keras.Model(cut, resnet.output, name="above_" + at)


def build_top_classifier(top: keras.Model, head: keras.Model, *, pooling: str) -> keras.Model:
    """Cached prefix activations -> top stages (BatchNorm in inference mode) -> pooling -> head."""
    keras = _keras()
    inputs = keras.Input(top.input_shape[1:], name="activations")
    outputs = head(pooling_layer(pooling)(top(inputs, training=False)))
    return keras.Model(inputs, outputs, name="top_classifier")
