"""The model export writes, used as a user would: predict on the study's own test images gives what export's
evaluation gave, from the model file alone."""

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import lepidopt
from conftest import TINY_SPACE
from lepidopt.api import search
from lepidopt.data import image_batches
from lepidopt.cli import main
from lepidopt.predictor import TOLERANCE, classification_metrics
from lepidopt.results import export_best
from lepidopt.study import open_study
from lepidopt.trial import study_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(demo_folder, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    search(study="p", data=str(demo_folder), space=str(TINY_SPACE), results_dir=results, n_trials=2,
           sampler="random", pruner="none", strategy="joint")  # trial 0, the baseline, fine-tunes
    return export_best(study="p", results_dir=results)


def test_predict_on_the_test_split_gives_exports_evaluation(exported):
    run = open_study(study="p", results_dir=exported.folder.parent.parent).run
    data = study_data(run)
    split, test = data.split, data.split.indices("test")
    model = lepidopt.load_model(study="p", results_dir=exported.folder.parent.parent)
    assert model.classes == tuple(split.classes) and model.card.trial == exported.metrics["trial"]
    assert model.card.recipe == exported.metrics["recipe"] and model.card.data["source"] == run.data.source
    probabilities = model.predict_proba([split.paths[i] for i in test])
    images = data.images(model.image_size)  # the decoded images export evaluated on
    classifier = model.runner.model.get_layer("classifier")
    as_exported = classifier.predict(image_batches(images, split.labels, test, batch_size=8), verbose=0)
    assert np.abs(probabilities - as_exported).max() < 1e-5
    assert (probabilities.argmax(axis=1) == as_exported.argmax(axis=1)).all()
    ours = classification_metrics(split.labels[test], probabilities, list(split.classes))
    theirs = exported.metrics["test"]
    assert ours["confusion_matrix"] == theirs["confusion_matrix"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-12)


def test_the_exported_file_alone_predicts_in_a_fresh_process_from_another_folder(exported, demo_folder, tmp_path):
    alone = tmp_path / "museum" / "butterflies.keras"
    alone.parent.mkdir()
    shutil.copy(exported.folder / "model.keras", alone)
    drawer = tmp_path / "drawer"
    shutil.copytree(demo_folder / "Pieridae", drawer)
    done = subprocess.run([sys.executable, "-m", "lepidopt", "-q", "predict", "--model", str(alone), str(drawer),
                           "--out", "out.csv", "--top-k", "2"], cwd=alone.parent, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((alone.parent / "out.csv").open()))
    assert len(rows) == len(list(drawer.iterdir())) and all(not row["error"] for row in rows)
    expected = lepidopt.load_model(alone).predict_proba([row["path"] for row in rows])
    assert [row["prediction_1"] for row in rows] == [exported.metrics["test"]["confusion_matrix"]["classes"][i]
                                                     for i in expected.argmax(axis=1)]
    with zipfile.ZipFile(alone) as archive:
        card = json.loads(archive.read("lepidopt.json"))
    assert card["study"] == "p" and card["image_size"] == exported.metrics["recipe"]["image_size"]


def test_export_checks_every_format_on_the_test_split_and_removes_one_that_fails(exported, monkeypatch, capsys):
    onnx = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))  # else: the others
    asked = ["onnx", "litert", "savedmodel"] if onnx else ["litert", "savedmodel"]
    monkeypatch.setitem(TOLERANCE, "litert", -1.0)  # no file can pass: the path a failing format takes
    results = exported.folder.parent.parent
    assert main(["export", "--study", "p", "--results-dir", str(results), "--format", ",".join(asked)]) == 5
    err = capsys.readouterr().err
    assert "error: export to litert: did not reproduce the Keras model on the test split" in err
    best = exported.folder
    assert {p.name for p in best.iterdir()} == {"model.keras", "model.savedmodel", "metrics.json", "embeddings.npz",
                                                *(["model.onnx"] if onnx else [])}
    formats = json.loads((best / "metrics.json").read_text())["formats"]
    assert list(formats) == ["keras", *asked]
    n_test = exported.metrics["test"]["n_images"]
    for name, limit in (("savedmodel", 1e-5), ("onnx", 1e-4), ("litert", 1e-3)):
        if name in asked:
            check = formats[name]
            assert check["max_abs_difference"] < limit and check["top1_agreement"] == 1.0
            assert check["images"] == n_test and check["passed"] is (name != "litert")
    for kept in ("model.onnx", "model.savedmodel") if onnx else ("model.savedmodel",):
        assert lepidopt.load_model(best / kept).card == lepidopt.load_model(best / "model.keras").card
