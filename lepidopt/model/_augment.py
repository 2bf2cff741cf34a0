"""Augmentation whose every magnitude scales with one strength in [0, 1]; 0 is the identity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ModelError
from ._backbone import _keras

if TYPE_CHECKING:
    import keras

__all__ = ["build_augmentation", "AUGMENT_AT_FULL_STRENGTH"]

# The magnitudes at strength 1.0; each layer is given strength x its value.
AUGMENT_AT_FULL_STRENGTH = {
    "rotation": 0.15,      # fraction of a full turn (0.15 = 54 degrees)
    "zoom": 0.3,           # fraction of the height
    "translation": 0.15,   # fraction of the size
    "contrast": 0.4,
    "brightness": 0.3,     # fraction of the value range
}


def build_augmentation(strength: float, *, seed: int | None = None) -> keras.Sequential | None:
    """A Sequential of random layers, active only when called with training=True; None at strength 0."""
    if not 0.0 <= strength <= 1.0:
        raise ModelError(f"augment.strength {strength}", "must lie in [0, 1].")
    if strength == 0.0:
        return None
    keras = _keras()
    m = {k: v * strength for k, v in AUGMENT_AT_FULL_STRENGTH.items()}
    layers = keras.layers
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(m["rotation"], fill_mode="reflect", seed=seed),
            layers.RandomZoom(m["zoom"], fill_mode="reflect", seed=seed),
            layers.RandomTranslation(m["translation"], m["translation"], fill_mode="reflect", seed=seed),
            layers.RandomContrast(m["contrast"], value_range=(0, 255), seed=seed),
            layers.RandomBrightness(m["brightness"], value_range=(0, 255), seed=seed),
        ],
        name="augmentation",
    )
