"""The recipe: every setting one trial trains with, from a space's fixed values and sampled params.

Keys are dotted (``head.units``) so a space, a trial's params and run.yaml all speak the same words.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .errors import SpaceError

__all__ = ["Recipe", "RECIPE_KEYS", "TAXONOMY_KEYS", "POOLINGS", "STAGES", "CLASS_WEIGHTS", "OPTIMIZERS", "ACTIVATIONS"]

POOLINGS = ("avg", "max")
STAGES = ("none", "conv5", "conv4", "conv3", "all")
CLASS_WEIGHTS = ("none", "balanced", "sqrt")
OPTIMIZERS = ("adam", "adamw", "sgd")
ACTIVATIONS = ("relu", "gelu", "swish", "elu", "tanh")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One trial's complete settings. Build it with :meth:`from_flat`, which checks every value."""

    image_size: int = 224
    batch_size: int = 32
    epochs_head: int = 8
    epochs_finetune: int = 6
    weights: str = "imagenet"
    head_pooling: str = "avg"
    head_dense_layers: int = 0
    head_units: int = 256
    head_activation: str = "relu"
    head_dropout: float = 0.0
    head_batchnorm: bool = False
    head_lr: float = 1e-3
    optimizer: str = "adam"
    augment_strength: float = 0.0
    sampling_ratio: float = 1.0
    sampling_class_weight: str = "balanced"
    finetune_unfreeze: str = "none"
    finetune_lr: float = 1e-5
    # A taxonomy study's: the level undersampling and class weights count classes at (None: the coarsest), and
    # the finest level's loss weight over the coarsest's (None: every level alike; see model._levels).
    sampling_level: str | None = None
    taxonomy_fine_weight: float | None = None

    @classmethod
    def from_flat(cls, values: Mapping[str, Any], *, where: str = "recipe") -> "Recipe":
        """Build from dotted keys (``head.units``); unknown keys and bad values raise SpaceError."""
        unknown = sorted(set(values) - set(RECIPE_KEYS))
        if unknown:
            raise SpaceError(
                where, f"unknown key {unknown[0]!r}; the known keys are {', '.join(RECIPE_KEYS)}.",
                fix="Fix the spelling or remove it."
            )
        kwargs = {}
        for key, value in values.items():
            kwargs[key.replace(".", "_")] = _coerce(key, value, where)
        return cls(**kwargs)

    def to_flat(self) -> dict[str, Any]:
        """Every key, but a taxonomy key left unset: a single-label recipe records only the keys it uses."""
        flat = {key: getattr(self, key.replace(".", "_")) for key in RECIPE_KEYS}
        return {key: value for key, value in flat.items() if not (key in TAXONOMY_KEYS and value is None)}

    @property
    def total_epochs(self) -> int:
        return self.epochs_head + (self.epochs_finetune if self.finetune_unfreeze != "none" else 0)


def _dotted(field_name: str) -> str:
    for prefix in ("head", "augment", "sampling", "finetune", "taxonomy"):
        if field_name.startswith(prefix + "_"):
            return prefix + "." + field_name[len(prefix) + 1 :]
    return field_name


RECIPE_KEYS: tuple[str, ...] = tuple(_dotted(f.name) for f in dataclasses.fields(Recipe))
TAXONOMY_KEYS = ("sampling.level", "taxonomy.fine_weight")  # meaningful only in a study with taxonomy levels

_CHOICES = {
    "head.pooling": POOLINGS,
    "head.activation": ACTIVATIONS,
    "optimizer": OPTIMIZERS,
    "sampling.class_weight": CLASS_WEIGHTS,
    "finetune.unfreeze": STAGES,
}
_POSITIVE_INTS = ("image_size", "batch_size")
_NON_NEGATIVE_INTS = ("epochs_head", "epochs_finetune", "head.dense_layers", "head.units")
_UNIT_INTERVAL = ("head.dropout", "augment.strength")
_LEARNING_RATES = ("head.lr", "finetune.lr")


def _coerce(key: str, value: Any, where: str) -> Any:
    path = f"{where}.{key}"
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise SpaceError(path, f"must be one of {list(_CHOICES[key])}, got {value!r}.")
        return value
    if key == "weights":
        if not isinstance(value, str) or not value:
            raise SpaceError(path, f"must be 'imagenet', 'none' or a path to a weights file, got {value!r}.")
        return value
    if key in TAXONOMY_KEYS and value is None:
        return None
    if key == "sampling.level":
        if not isinstance(value, str) or not value:
            raise SpaceError(path, f"must name one of the study's taxonomy levels, got {value!r}.")
        return value
    if key == "taxonomy.fine_weight" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not value > 0):
        raise SpaceError(path, f"must be a number above 0 (the finest level's loss weight over the coarsest's), "
                         f"got {value!r}.")
    if key == "head.batchnorm":
        if not isinstance(value, bool):
            raise SpaceError(path, f"must be true or false, got {value!r}.")
        return value
    if key in _POSITIVE_INTS or key in _NON_NEGATIVE_INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpaceError(path, f"must be an integer, got {value!r}.")
        if key == "image_size" and value < 32:
            raise SpaceError(path, f"ResNet-50 needs at least 32 px, got {value}.", fix="Use 32 or more.")
        if key in _POSITIVE_INTS and value < 1:
            raise SpaceError(path, f"must be at least 1, got {value}.")
        if value < 0:
            raise SpaceError(path, f"must be 0 or more, got {value}.")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpaceError(path, f"must be a number, got {value!r}.")
    value = float(value)
    if key in _UNIT_INTERVAL and not 0.0 <= value <= 1.0:
        raise SpaceError(path, f"must lie in [0, 1], got {value}.")
    if key == "head.dropout" and value >= 1.0:
        raise SpaceError(path, f"must be below 1 (1 drops everything), got {value}.")
    if key == "sampling.ratio" and not 0.0 < value <= 1.0:
        raise SpaceError(
            path, f"must lie in (0, 1]: the smallest class keeps at least ratio x the largest; got {value}."
        )
    if key in _LEARNING_RATES and not value > 0.0:
        raise SpaceError(path, f"a learning rate must be above 0, got {value}.")
    return value
