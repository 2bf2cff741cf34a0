"""Using the model a search found: load it from its file alone, then predict, embed and evaluate any images."""

from ._card import CARD_MEMBER, ModelCard, read_card, write_card
from ._formats import EXPORT_FORMATS, FORMAT_FILES, TOLERANCE, check_formats, remove_format, write_format
from ._inputs import Item, items_of, labelled_items
from ._metrics import classification_metrics, level_columns, taxonomy_test_metrics
from ._outputs import PREDICTION_FORMATS, PredictionWriter
from ._predictor import MODEL_FILE, Predictor, Scored, load_model
from ._writing import (EMBEDDING_SUFFIXES, WrittenPredictions, check_embedding_settings, check_prediction_settings,
                       write_embeddings, write_predictions)

__all__ = [
    "CARD_MEMBER",
    "EXPORT_FORMATS",
    "FORMAT_FILES",
    "TOLERANCE",
    "check_formats",
    "remove_format",
    "write_format",
    "EMBEDDING_SUFFIXES",
    "Item",
    "MODEL_FILE",
    "ModelCard",
    "PREDICTION_FORMATS",
    "PredictionWriter",
    "Predictor",
    "Scored",
    "WrittenPredictions",
    "check_embedding_settings",
    "level_columns",
    "taxonomy_test_metrics",
    "check_prediction_settings",
    "classification_metrics",
    "items_of",
    "labelled_items",
    "load_model",
    "read_card",
    "write_card",
    "write_embeddings",
    "write_predictions",
]
