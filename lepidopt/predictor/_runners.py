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
        self._rows = 0

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self._predicted(self.model, batch)

    def embeddings(self, batch: np.ndarray) -> np.ndarray:
        if self._embedder is None:
            from ..model import deployable_embedder

            self._embedder = deployable_embedder(self.model)
        return self._predicted(self._embedder, batch)

    def _predicted(self, model: keras.Model, batch: np.ndarray) -> np.ndarray:
        # A batch smaller than the ones before (a stream's last) is padded to their size: a new shape would
        # make Keras trace the model again, which costs a ResNet-50 about a second.
        n = len(batch)
        self._rows = max(self._rows, n)
        if n < self._rows:
            batch = np.concatenate([batch, np.zeros((self._rows - n, *batch.shape[1:]), batch.dtype)])
        return np.asarray(model.predict_on_batch(batch), dtype=np.float32)[:n]


class _TwoOutputs:
    """A runtime that gives probabilities and embeddings together (the servable model export writes). The
    converters do not keep the outputs' order; their names do (``...:0`` before ``...:1``), and the
    probabilities have one column per class."""

    n_classes = 0  # set by the loader, from the model's card

    def _run(self, batch: np.ndarray) -> list[tuple[str, np.ndarray]]:
        raise NotImplementedError

    def _both(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        named = sorted(self._run(batch), key=lambda pair: _output_index(pair[0]))
        arrays = [np.asarray(array, np.float32) for _, array in named]
        if arrays[0].shape[-1] != self.n_classes and arrays[1].shape[-1] == self.n_classes:
            arrays.reverse()
        return arrays[0], arrays[1]

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self._both(batch)[0]

    def embeddings(self, batch: np.ndarray) -> np.ndarray:
        return self._both(batch)[1]


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

    def metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def _run(self, batch: np.ndarray) -> list[tuple[str, np.ndarray]]:
        names = [output.name for output in self.session.get_outputs()]
        return list(zip(names, self.session.run(names, {self._input: batch})))


class SavedModelRunner(_TwoOutputs):
    def __init__(self, path: Path) -> None:
        from .._tf import tensorflow

        self.loaded: Any = tensorflow().saved_model.load(str(path))  # kept: serve refers to its variables
        self.serve: Any = self.loaded.serve

    def _run(self, batch: np.ndarray) -> list[tuple[str, np.ndarray]]:
        probabilities, embeddings = self.serve(batch)
        return [(":0", probabilities), (":1", embeddings)]


class LiteRTRunner(_TwoOutputs):
    def __init__(self, path: Path) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            from .._tf import tensorflow

            Interpreter = tensorflow().lite.Interpreter
        self.interpreter = Interpreter(model_path=str(path))
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._outputs = [(d["name"], d["index"]) for d in self.interpreter.get_output_details()]
        self._shape: tuple[int, ...] | None = None

    def _run(self, batch: np.ndarray) -> list[tuple[str, np.ndarray]]:
        if batch.shape != self._shape:
            self.interpreter.resize_tensor_input(self._input, batch.shape)
            self.interpreter.allocate_tensors()
            self._shape = batch.shape
        self.interpreter.set_tensor(self._input, batch)
        self.interpreter.invoke()
        return [(name, self.interpreter.get_tensor(index)) for name, index in self._outputs]


def _output_index(name: str) -> int:
    tail = name.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
