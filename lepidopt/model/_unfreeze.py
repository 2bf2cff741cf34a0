"""Unfreezing ResNet-50 by stage, with every BatchNormalization kept frozen (inference mode)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ..errors import ModelError
from ..recipe import STAGES
from ._backbone import _keras

if TYPE_CHECKING:
    import keras

__all__ = ["unfreeze", "trainable_stages"]

_ORDER = ("conv1", "conv2", "conv3", "conv4", "conv5")


def trainable_stages(stage: str) -> tuple[str, ...]:
    """The ResNet stages trained when fine-tuning from ``stage`` up ('conv4' -> conv4, conv5)."""
    if stage not in STAGES:
        raise ModelError(f"finetune.unfreeze {stage!r}", f"must be one of {list(STAGES)}.")
    if stage == "none":
        return ()
    if stage == "all":
        return _ORDER
    return _ORDER[_ORDER.index(stage) :]


def unfreeze(backbone: keras.Model, stage: str) -> int:
    """Make the chosen stages trainable and everything else frozen; returns the trainable weight count.

    In Keras 3 a BatchNormalization layer with trainable=False runs in inference mode, so keeping BN
    frozen keeps its ImageNet statistics, which a small fine-tuning batch would otherwise wreck.
    """
    keras = _keras()
    stages = trainable_stages(stage)
    backbone.trainable = bool(stages)  # propagates to every layer, nested models included
    if stages:
        for layer in _all_layers(backbone):
            if not isinstance(layer, keras.Model):
                layer.trainable = layer.name.split("_")[0] in stages and not isinstance(
                    layer, keras.layers.BatchNormalization
                )
    return sum(_size(w) for w in backbone.trainable_weights)


def _size(weight: keras.Variable) -> int:
    n = 1
    for d in weight.shape:
        n *= int(d)
    return n


def _all_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
