"""The found model in the formats people deploy: Keras, SavedModel, ONNX and LiteRT, each carrying its card."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import MissingExtraError, SettingError
from ._card import CARD_MEMBER, ModelCard, write_card

if TYPE_CHECKING:
    import keras

__all__ = ["EXPORT_FORMATS", "FORMAT_FILES", "TOLERANCE", "check_formats", "write_format", "remove_format"]

FORMAT_FILES = {"keras": "model.keras", "savedmodel": "model.savedmodel", "onnx": "model.onnx",
                "litert": "model.tflite"}
EXPORT_FORMATS = tuple(FORMAT_FILES)
# The largest difference of a probability from the Keras model's that a format may show on the test split.
TOLERANCE = {"keras": 0.0, "savedmodel": 1e-5, "onnx": 1e-4, "litert": 1e-3}
ONNX_CARD_KEY = "lepidopt"
LITERT_CARD_SUFFIX = ".json"


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """The formats asked for, keras always first (predict, evaluate, embed and the report read it), each
    known and with its runtime installed, before anything is trained."""
    names = [f.strip() for f in formats.split(",")] if isinstance(formats, str) else list(formats)
    unknown = [name for name in names if name not in EXPORT_FORMATS]
    if unknown or not names:
        raise SettingError("formats", ",".join(names),
                           f"must be a comma-separated list of {', '.join(EXPORT_FORMATS)}.")
    if "onnx" in names:
        for module in ("tf2onnx", "onnxruntime", "onnx"):
            if importlib.util.find_spec(module) is None:
                raise MissingExtraError("ONNX export", f"needs {module}.", fix="pip install 'lepidopt[onnx]'.")
    return ("keras", *dict.fromkeys(name for name in names if name != "keras"))


def write_format(name: str, deployable: keras.Model, card: ModelCard, folder: Path) -> Path:
    """``deployable`` written in format ``name`` into ``folder``, with its card: inside the .keras archive,
    in the ONNX model's metadata (key 'lepidopt'), as lepidopt.json in the SavedModel folder, and beside the
    LiteRT file as model.tflite.json. The other formats hold the servable model (probabilities, embeddings)."""
    path = folder / FORMAT_FILES[name]
    if name == "keras":
        deployable.save(path)
        write_card(path, card)
        return path
    from ..model import build_servable

    servable = build_servable(deployable)
    servable(np.zeros((1, card.image_size, card.image_size, 3), np.float32))  # ONNX export wants a model called once
    text = json.dumps(card.to_dict(), indent=1)
    if name == "savedmodel":
        servable.export(str(path), format="tf_saved_model", verbose=False)
        (path / CARD_MEMBER).write_text(text)
    elif name == "onnx":
        import onnx

        servable.export(str(path), format="onnx", verbose=False)
        model = onnx.load(str(path))
        entry = model.metadata_props.add()
        entry.key, entry.value = ONNX_CARD_KEY, text
        onnx.save(model, str(path))
    else:
        servable.export(str(path), format="litert", verbose=False)
        path.with_name(path.name + LITERT_CARD_SUFFIX).write_text(text)
    return path


def remove_format(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
        path.with_name(path.name + LITERT_CARD_SUFFIX).unlink(missing_ok=True)
