"""Putting the pieces together: the feature extractor (phase 1) and the full classifier (phase 2)."""

from __future__ import annotations

from ._backbone import _keras
from ._head import pooling_layer

__all__ = ["build_feature_extractor", "build_classifier"]


def build_feature_extractor(backbone, *, pooling: str):
    """Images -> frozen backbone -> pooled features: the part a feature cache can store, since its
    output does not depend on the head. Augmented features come from augmented input batches."""
    keras = _keras()
    inputs = keras.Input(backbone.input_shape[1:], name="image")
    x = backbone(inputs, training=False)
    outputs = pooling_layer(pooling)(x)
    return keras.Model(inputs, outputs, name="feature_extractor")


def build_classifier(backbone, head, *, pooling: str, augmentation=None):
    """Images -> [augmentation] -> backbone (BatchNorm in inference mode) -> pooling -> head."""
    keras = _keras()
    inputs = keras.Input(backbone.input_shape[1:], name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = backbone(x, training=False)
    x = pooling_layer(pooling)(x)
    outputs = head(x)
    return keras.Model(inputs, outputs, name="classifier")
