"""Running a saved model on a batch of images, whatever its format: Keras, SavedModel, ONNX or LiteRT.

Each runner imports only its own runtime, so an ONNX model runs without TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import MissingExtraError, ModelError

if TYPE_CHECKING:
    import keras

__all__ = ["Runner", "KerasRunner", "OnnxRunner", "SavedModelRunner", "LiteRTRunner", "format_of"]


class Runner(Protocol):
    def probabilities(self, batch: np.ndarray) -> np.ndarray: ...

    def embeddings(self, batch: np.ndarray) -> np.ndarray: ...


def format_of(path: Path) -> str:
    """keras, savedmodel, onnx or litert, from what ``path`` is."""
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "savedmodel"
    formats = {".keras": "keras", ".onnx": "onnx", ".tflite": "litert"}
    if path.suffix.lower() in formats:
        return formats[path.suffix.lower()]
    raise ModelError(f"model {str(path)!r}", "is neither a .keras, .onnx or .tflite file nor a SavedModel folder.",
                     fix="Give the model.keras, model.onnx, model.tflite or model.savedmodel that export wrote.")


class KerasRunner:
    def __init__(self, path: Path) -> None:
        from ..model import load_classifier

        try:
            self.model: keras.Model = load_classifier(path)
        except (ValueError, OSError) as exc:
            raise ModelError(f"model {str(path)!r}", f"Keras cannot load it ({exc}).") from None
        self._embedder: keras.Model | None = None
        self._shape: tuple[int, ...] = ()  # the largest batch of the images' current size

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self._predicted(self.model, batch)

    def embeddings(self, batch: np.ndarray) -> np.ndarray:
        if self._embedder is None:
            from ..model import deployable_embedder

            self._embedder = deployable_embedder(self.model)
        return self._predicted(self._embedder, batch)

    def _predicted(self, model: keras.Model, batch: np.ndarray) -> np.ndarray:
        # A batch smaller than the one before of the same image size (a stream's last) is padded to its
        # size: a new batch shape would make Keras trace the model again, about a second for a ResNet-50.
        n = len(batch)
        if batch.shape[1:] != self._shape[1:] or n > self._shape[0]:
            self._shape = batch.shape
        elif n < self._shape[0]:
            batch = np.concatenate([batch, np.zeros((self._shape[0] - n, *batch.shape[1:]), batch.dtype)])
        return np.asarray(model.predict_on_batch(batch), dtype=np.float32)[:n]


class _TwoOutputs:
    """A runtime that gives probabilities and embeddings together: the servable model export writes, whose
    outputs are named ``probabilities`` and ``embeddings``."""

    def _both(self, batch: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._both(batch)["probabilities"], np.float32)

    def embeddings(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._both(batch)["embeddings"], np.float32)


class OnnxRunner(_TwoOutputs):
    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise MissingExtraError(f"ONNX model {str(path)!r}", "needs onnxruntime to run.",
                                    fix="pip install 'lepidopt[onnx]'.") from None
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own kinds for unreadable files
            raise ModelError(f"model {str(path)!r}", f"onnxruntime cannot load it ({exc}).") from None
        self._input = self.session.get_inputs()[0].name
        self._outputs = [output.name for output in self.session.get_outputs()]

    def metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def _both(self, batch: np.ndarray) -> dict[str, Any]:
        return dict(zip(self._outputs, self.session.run(self._outputs, {self._input: batch})))


class SavedModelRunner(_TwoOutputs):
    def __init__(self, path: Path) -> None:
        from .._tf import tensorflow

        self.loaded: Any = tensorflow().saved_model.load(str(path))  # kept: serve refers to its variables
        self.serve: Any = self.loaded.serve

    def _both(self, batch: np.ndarray) -> dict[str, Any]:
        return dict(self.serve(batch))


class LiteRTRunner(_TwoOutputs):
    def __init__(self, path: Path) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            from .._tf import tensorflow

            Interpreter = tensorflow().lite.Interpreter
        self.interpreter = Interpreter(model_path=str(path))
        signature = next(iter(self.interpreter.get_signature_list()))
        self.run = self.interpreter.get_signature_runner(signature)  # resizes its input to each batch

    def _both(self, batch: np.ndarray) -> dict[str, Any]:
        return dict(self.run(images=batch))
