"""ResNet-50 backbone, head, augmentation, unfreezing by stage and two-phase training."""

from ._augment import AUGMENT_AT_FULL_STRENGTH, build_augmentation
from ._backbone import build_backbone, load_classifier, weights_identity
from ._classifier import build_classifier, build_feature_extractor
from ._head import build_head, pooling_layer
from ._training import compile_model, extract_features, finetune_epochs, head_epochs, make_optimizer
from ._unfreeze import trainable_stages, unfreeze

__all__ = [
    "AUGMENT_AT_FULL_STRENGTH",
    "build_augmentation",
    "build_backbone",
    "build_classifier",
    "build_feature_extractor",
    "build_head",
    "compile_model",
    "extract_features",
    "finetune_epochs",
    "head_epochs",
    "load_classifier",
    "make_optimizer",
    "pooling_layer",
    "trainable_stages",
    "unfreeze",
    "weights_identity",
]
