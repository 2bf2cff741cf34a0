"""ResNet-50 backbone, head, augmentation, unfreezing by stage and two-phase training."""

from ._augment import AUGMENT_AT_FULL_STRENGTH, build_augmentation
from ._backbone import build_backbone, load_classifier, weights_identity
from ._classifier import PREFIX_OUTPUT, build_classifier, build_feature_extractor, build_top_classifier, split_backbone
from ._embedding import build_deployable, build_servable, deployable_embedder, embedding_model, embeddings_of
from ._head import build_head, pooling_layer, start_normalised
from ._head_trainers import HeadTrainer, HeadTrainers, shuffled_epoch
from ._levels import level_targets, level_weights, output_sizes
from ._seeds import set_seeds
from ._training import compile_model, extract_features, finetune_epochs, fit_on_arrays, make_optimizer, predict_arrays
from ._unfreeze import trainable_stages, unfreeze

__all__ = [
    "HeadTrainer",
    "HeadTrainers",
    "PREFIX_OUTPUT",
    "AUGMENT_AT_FULL_STRENGTH",
    "build_augmentation",
    "build_backbone",
    "build_classifier",
    "build_deployable",
    "build_servable",
    "deployable_embedder",
    "embedding_model",
    "embeddings_of",
    "build_feature_extractor",
    "build_head",
    "build_top_classifier",
    "compile_model",
    "extract_features",
    "finetune_epochs",
    "fit_on_arrays",
    "level_targets",
    "level_weights",
    "load_classifier",
    "make_optimizer",
    "output_sizes",
    "pooling_layer",
    "predict_arrays",
    "set_seeds",
    "shuffled_epoch",
    "split_backbone",
    "start_normalised",
    "trainable_stages",
    "unfreeze",
    "weights_identity",
]
