"""The model in the formats people deploy, on the small model the predictor tests build: each carries its card,
loads with lepidopt.load_model, and gives the Keras model's probabilities and embeddings."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import lepidopt
from lepidopt.errors import MissingExtraError, ModelError, SettingError
from lepidopt.predictor import TOLERANCE, check_formats, write_format
from test_predictor import CLASSES, save_small_model

ONNX_INSTALLED = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))
FORMATS = ["savedmodel", "litert", pytest.param("onnx", marks=pytest.mark.skipif(
    not ONNX_INSTALLED, reason="ONNX needs pip install 'lepidopt[onnx]'"))]


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    return lepidopt.load_model(save_small_model(tmp_path_factory.mktemp("keras") / "model.keras"))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).uniform(0, 255, (7, 16, 16, 3)).astype(np.float32)


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_carries_the_card_and_gives_the_keras_models_outputs(name, keras_model, images, tmp_path):
    path = write_format(name, keras_model.runner.model, keras_model.card, tmp_path)
    loaded = lepidopt.load_model(path)
    assert loaded.card == keras_model.card and loaded.classes == CLASSES
    probabilities = loaded.predict_proba(images)
    assert np.abs(probabilities - keras_model.predict_proba(images)).max() <= TOLERANCE[name]
    assert (probabilities.argmax(axis=1) == keras_model.predict_proba(images).argmax(axis=1)).all()
    assert np.abs(loaded.embed(images) - keras_model.embed(images)).max() <= 10 * TOLERANCE[name]
    other_size = np.random.default_rng(4).uniform(0, 255, (2, 40, 23, 3)).astype(np.float32)
    assert np.abs(loaded.predict_proba(other_size) - keras_model.predict_proba(other_size)).max() <= TOLERANCE[name]


def test_an_onnx_model_predicts_without_tensorflow(keras_model, tmp_path):
    if not ONNX_INSTALLED:
        pytest.skip("ONNX needs pip install 'lepidopt[onnx]'")
    path = write_format("onnx", keras_model.runner.model, keras_model.card, tmp_path)
    code = ("import sys, json, numpy as np, lepidopt\n"
            "model = lepidopt.load_model(sys.argv[1])\n"
            "x = np.full((2, 30, 30, 3), 128, np.uint8)\n"
            "print(json.dumps({'classes': model.classes, 'p': model.predict_proba(x).tolist(),\n"
            "                  'tensorflow': 'tensorflow' in sys.modules, 'keras': 'keras' in sys.modules}))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["tensorflow"] is False and answer["keras"] is False and answer["classes"] == list(CLASSES)
    expected = keras_model.predict_proba(np.full((2, 30, 30, 3), 128, np.uint8))
    assert np.abs(np.array(answer["p"]) - expected).max() <= TOLERANCE["onnx"]


def test_formats_are_checked_before_anything_is_trained(monkeypatch):
    assert check_formats("onnx,keras,litert") == ("keras", "onnx", "litert")
    assert check_formats(["savedmodel"]) == ("keras", "savedmodel")
    with pytest.raises(SettingError, match=r"formats='keras,tflite': must be a comma-separated list of keras, "
                                           r"savedmodel, onnx, litert"):
        check_formats("keras,tflite")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None if name == "tf2onnx" else object())
    with pytest.raises(MissingExtraError, match=r"ONNX export: needs tf2onnx. pip install 'lepidopt\[onnx\]'"):
        check_formats("onnx")


def test_a_file_that_is_no_model_lepidopt_knows_is_refused(keras_model, tmp_path):
    (tmp_path / "model.pt").write_bytes(b"torch")
    with pytest.raises(ModelError, match=r"is neither a .keras, .onnx or .tflite file nor a SavedModel folder"):
        lepidopt.load_model(tmp_path / "model.pt")
    path = write_format("litert", keras_model.runner.model, keras_model.card, tmp_path)
    (tmp_path / "model.tflite.json").unlink()
    with pytest.raises(ModelError, match=r"carries no card model.tflite.json beside it"):
        lepidopt.load_model(path)


def test_lepidopt_predict_with_an_onnx_model_never_imports_tensorflow(keras_model, tmp_path):
    if not ONNX_INSTALLED:
        pytest.skip("ONNX needs pip install 'lepidopt[onnx]'")
    path = write_format("onnx", keras_model.runner.model, keras_model.card, tmp_path)
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(tmp_path / "a.png")
    code = ("import sys\n"
            "from lepidopt.cli import main\n"
            "code = main(['-q', 'predict', '--model', sys.argv[1], 'a.png', '--out', 'p.csv'])\n"
            "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert done.stdout.splitlines()[-1].split() == ["0", "False", "False"], done.stderr
    assert (tmp_path / "p.csv").read_text().count("\n") == 2
