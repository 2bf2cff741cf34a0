"""The found model in use, on a small model built here (no training): load it from its file alone, predict,
evaluate and embed any images, from Python and from the command line."""

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

import lepidopt
from conftest import write_image
from lepidopt.cli import main
from lepidopt.errors import DataError, ModelError, SettingError, StudyError
from lepidopt.model import build_deployable
from lepidopt.predictor import ModelCard, Predictor, read_card, write_card

CLASSES = ("Hesperiidae", "Lycaenidae", "Pieridae")
SIZE = 16


def save_small_model(path, *, classes=CLASSES, size=SIZE):
    """A classifier with the layer names lepidopt's own have (pool, head, embedding_to_logits), behind the
    same any-size resize export puts in front, with its card."""
    import keras

    keras.utils.set_random_seed(0)
    images = keras.Input((size, size, 3), name="image")
    features = keras.layers.Conv2D(6, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(images))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    head_in = keras.Input((6,), name="features")
    hidden = keras.layers.Dense(5, activation="relu", name="head_dense_0")(head_in)
    logits = keras.layers.Dense(len(classes), name="embedding_to_logits", kernel_initializer="he_normal")(hidden)
    head = keras.Model(head_in, keras.layers.Activation("softmax", name="probabilities")(logits), name="head")
    classifier = keras.Model(images, head(pooled), name="classifier")
    build_deployable(classifier, image_size=size).save(path)
    write_card(path, ModelCard(classes=tuple(classes), image_size=size, study="s", trial=3, objective="accuracy",
                               recipe={"head.units": 5}, data={"label_level": "family", "min_size": 8},
                               lepidopt_version=lepidopt.__version__))
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_small_model(tmp_path_factory.mktemp("model") / "model.keras")


@pytest.fixture(scope="module")
def model(model_file):
    return lepidopt.load_model(model_file)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A folder of class subfolders: every class, in several sizes and modes, plus a class the model lacks."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(1)
    for c, name in enumerate((*CLASSES, "Riodinidae")):
        for i in range(4):
            size = tuple(int(v) for v in rng.integers(12, 40, 2))
            write_image(root / name / f"{i}.png", mode=("RGB", "L", "RGBA", "RGB")[i], size=size)
    return root


@pytest.fixture(scope="module")
def drawer(tmp_path_factory):
    """New images as they come: nested folders, every mode Pillow reads, and files that are not usable."""
    root = tmp_path_factory.mktemp("drawer")
    write_image(root / "a.jpg", size=(40, 30))
    write_image(root / "tray 2" / "b.png", mode="RGBA", size=(33, 60))
    write_image(root / "tray 2" / "gray.png", mode="L")
    write_image(root / "deep.png", mode="I;16")
    write_image(root / "cmyk.jpg", mode="CMYK")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (root / "empty.png").write_bytes(b"")
    write_image(root / "tiny.png", size=(4, 4))
    write_image(root / ".hidden" / "c.png")
    return root


def test_the_model_carries_its_card_and_needs_nothing_else(model_file, tmp_path):
    card = read_card(model_file)
    assert card.classes == CLASSES and card.image_size == SIZE and (card.study, card.trial) == ("s", 3)
    assert card.lepidopt_version == lepidopt.__version__ and card.recipe == {"head.units": 5}
    alone = tmp_path / "elsewhere" / "m.keras"
    alone.parent.mkdir()
    shutil.copy(model_file, alone)
    loaded = lepidopt.load_model(alone)
    assert isinstance(loaded, Predictor) and loaded.classes == CLASSES and loaded.image_size == SIZE
    assert lepidopt.load_model(alone.parent / "m.keras").path == alone


def test_any_size_and_either_dtype_gives_the_same_probabilities_as_the_squashed_image(model, drawer):
    from lepidopt.data import load_resized

    squashed = load_resized(drawer / "a.jpg", SIZE)
    through_paths = model.predict_proba([drawer / "a.jpg"])
    assert np.allclose(model.predict_proba(squashed), through_paths, atol=1e-6)
    assert np.allclose(model.predict_proba(squashed.astype(np.float32)), through_paths, atol=1e-6)
    big = np.asarray(np.random.default_rng(0).uniform(0, 255, (2, 50, 37, 3)), dtype=np.float32)
    probabilities = model.predict_proba(big)
    assert probabilities.shape == (2, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert model.predict(big) == [CLASSES[i] for i in probabilities.argmax(axis=1)]
    with pytest.raises(SettingError, match=r"must be one image \(height, width, 3\) or a batch"):
        model.predict_proba(np.zeros((4, 4)))


def test_python_refuses_unusable_images_by_name(model, drawer):
    with pytest.raises(DataError, match=r"1 of 2 images: cannot be used \('.*broken.jpg': not an image"):
        model.predict([drawer / "a.jpg", drawer / "broken.jpg"])


def test_predict_classifies_every_readable_image_and_lists_the_rest_with_reasons(model, drawer, tmp_path, capsys):
    out = tmp_path / "out" / "p.csv"
    assert main(["predict", "--model", str(model.path), str(drawer), "--out", str(out), "--top-k", "2"]) == 0
    rows = list(csv.DictReader(out.open()))
    by_name = {os.path.relpath(row["path"], drawer): row for row in rows}
    assert set(by_name) == {"a.jpg", "tray 2/b.png", "tray 2/gray.png", "deep.png", "cmyk.jpg", "broken.jpg",
                            "empty.png", "tiny.png"}
    assert by_name["broken.jpg"]["error"].startswith("not an image")
    assert by_name["empty.png"]["error"] == "zero-byte file"
    assert by_name["tiny.png"]["error"] == "too small: 4x4 px, below the minimum of 8 px"
    read = [row for row in rows if not row["error"]]
    assert len(read) == 5 and list(rows[0]) == ["path", "error", "prediction_1", "probability_1", "prediction_2",
                                                "probability_2"]
    expected = model.predict_proba([row["path"] for row in read])
    for row, p in zip(read, expected):
        assert row["prediction_1"] == CLASSES[p.argmax()] and float(row["probability_1"]) == pytest.approx(p.max())
        assert float(row["probability_1"]) >= float(row["probability_2"])
    printed = capsys.readouterr()
    assert "5 images classified; 3 skipped" in printed.out
    assert f"skipped {drawer / 'empty.png'}: zero-byte file" in printed.err
    assert not list(out.parent.glob("*.part"))


def test_predict_reads_manifests_and_lists_and_writes_json_lines(model, labelled, tmp_path):
    files = sorted(labelled.rglob("*.png"))
    (tmp_path / "list.txt").write_text("".join(f"{os.path.relpath(f, tmp_path)}\n" for f in files[:3]))
    with (tmp_path / "m.csv").open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["file", "label"])
        table.writerows([os.path.relpath(f, tmp_path), f.parent.name] for f in files[3:6])
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model", str(model.path), str(tmp_path / "list.txt"), str(tmp_path / "m.csv"),
                 "--path-column", "file", "--out", str(out), "--all-probabilities"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["path"] for row in rows] == [str(f) for f in files[:6]]
    assert [row["label"] for row in rows] == [None] * 3 + [f.parent.name for f in files[3:6]]
    assert all(abs(sum(row[f"p:{c}"] for c in CLASSES) - 1) < 1e-5 for row in rows)


def test_predict_writes_parquet_with_the_extra(model, labelled, tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet output needs pip install 'lepidopt[parquet]'")
    assert main(["predict", "--model", str(model.path), str(labelled), "--class-folders",
                 "--out", str(tmp_path / "p.parquet")]) == 0
    table = pd.read_parquet(tmp_path / "p.parquet")
    assert len(table) == 16 and set(table["label"]) == {*CLASSES, "Riodinidae"}
    assert table["probability_1"].dtype == np.float32 and (table["error"] == "").all()


def test_evaluate_equals_scikit_learn_on_the_same_predictions_and_names_unknown_labels(model, labelled, tmp_path,
                                                                                      capsys):
    result = model.evaluate(labelled)
    known = [f for f in sorted(labelled.rglob("*.png")) if f.parent.name in CLASSES]
    probabilities = model.predict_proba(known)
    y_true = np.array([CLASSES.index(f.parent.name) for f in known])
    y_pred = probabilities.argmax(axis=1)
    assert result["n_images"] == 12 and result["n_images_in_source"] == 16
    assert result["unknown_labels"] == {"Riodinidae": 4} and result["skipped"] == []
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert result["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y_true, y_pred))
    assert result["macro_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro", labels=[0, 1, 2],
                                                           zero_division=0))
    assert result["weighted_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="weighted", labels=[0, 1, 2],
                                                              zero_division=0))
    assert result["confusion_matrix"]["counts"] == sk.confusion_matrix(y_true, y_pred, labels=[0, 1, 2]).tolist()
    assert main(["evaluate", "--model", str(model.path), str(labelled), "--out", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    assert "12 images scored of 16" in printed and "labels the model does not know: Riodinidae (4)" in printed
    assert json.loads((tmp_path / "m.json").read_text())["accuracy"] == pytest.approx(result["accuracy"])


def test_embed_then_report_gives_the_clustering_report(model, labelled, tmp_path):
    out = tmp_path / "e.npz"
    assert main(["embed", "--model", str(model.path), str(labelled), "--class-folders", "--out", str(out)]) == 0
    with np.load(out) as saved:
        assert saved["embeddings"].shape == (16, 5) and len(saved["paths"]) == 16
        assert [str(c) for c in saved["classes"]] == sorted({*CLASSES, "Riodinidae"})
        assert np.allclose(saved["embeddings"], model.embed(list(saved["paths"])), atol=1e-6)
    assert main(["report", "--embeddings", str(out), "--out", str(tmp_path / "report"), "--k-max", "5",
                 "--umap-components", "2"]) == 0
    assert "clustering" in json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert main(["embed", "--model", str(model.path), str(labelled), "--class-folders",
                 "--out", str(tmp_path / "e.npy")]) == 0
    beside = list(csv.DictReader((tmp_path / "e.paths.csv").open()))
    assert np.load(tmp_path / "e.npy").shape == (16, 5) and {row["label"] for row in beside} >= set(CLASSES)


def test_a_model_is_named_once_and_a_bad_one_is_refused(model_file, tmp_path, capsys):
    with pytest.raises(SettingError, match=r"path=None: needs a model file or a study, one of the two. Pass "
                                           r"path= or study="):
        lepidopt.load_model()
    with pytest.raises(StudyError, match=r"study 'nope': has no exported model .* Export its best trial first: "
                                         r"lepidopt.export_best\(study=...\)"):
        lepidopt.load_model(study="nope", results_dir=tmp_path)
    assert main(["predict", "--study", "nope", "--results-dir", str(tmp_path), str(tmp_path)]) == 6
    assert "Export its best trial first: lepidopt export --study ..., or check --results-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["predict", "--study", "s", "--model", str(model_file), str(tmp_path)])
    assert exited.value.code == 2
    plain = tmp_path / "plain.keras"  # a Keras archive without lepidopt's card
    with zipfile.ZipFile(model_file) as full, zipfile.ZipFile(plain, "w") as bare:
        for name in full.namelist():
            if name != "lepidopt.json":
                bare.writestr(name, full.read(name))
    with pytest.raises(ModelError, match=r"carries no lepidopt.json, so its classes and input size are unknown"):
        lepidopt.load_model(plain)
    (tmp_path / "notes.keras").write_text("hello")
    assert main(["evaluate", "--model", str(tmp_path / "notes.keras"), str(tmp_path)]) == 5
    assert "is not a .keras archive (not a zip file)" in capsys.readouterr().err


def test_predict_runs_from_another_folder_with_the_model_file_alone(model_file, drawer, tmp_path):
    out = subprocess.run([sys.executable, "-m", "lepidopt", "-q", "predict", "--model", str(model_file),
                          str(drawer / "a.jpg"), "--out", "here.csv"], cwd=tmp_path, capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0, out.stderr
    assert list(csv.DictReader((tmp_path / "here.csv").open()))[0]["prediction_1"] in CLASSES


def test_many_batches_keep_rows_in_order_through_bad_files_whole_bad_batches_and_a_short_last_one(model, drawer,
                                                                                                 labelled, tmp_path):
    good = sorted(labelled.rglob("*.png"))
    bad = [drawer / "broken.jpg", drawer / "empty.png", drawer / "tiny.png"]
    order = [good[0], bad[0], bad[1], bad[2], *good[1:8]]  # in batches of 2: one all bad, a short last one
    expected = model.predict_proba([p for p in order if p not in bad])
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(model.path), *map(str, order), "--out", str(out), "--batch-size", "2",
                 "--top-k", "1"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [row["path"] for row in rows] == [str(p) for p in order]
    read = [row for row in rows if not row["error"]]
    assert [row["prediction_1"] for row in read] == [CLASSES[i] for i in expected.argmax(axis=1)]
    assert [float(row["probability_1"]) for row in read] == pytest.approx(expected.max(axis=1).tolist(), abs=1e-6)
    assert main(["embed", "--model", str(model.path), *map(str, order), "--out", str(tmp_path / "e.npz"),
                 "--batch-size", "2"]) == 0
    with np.load(tmp_path / "e.npz") as saved:
        assert list(saved["paths"]) == [str(p) for p in order if p not in bad]
        assert np.allclose(saved["embeddings"], model.embed(list(saved["paths"]), batch_size=3), atol=1e-6)
    result = model.evaluate(labelled, batch_size=5)
    assert result == model.evaluate(labelled, batch_size=64)


def test_a_batch_size_below_one_is_refused_before_any_work(model, drawer, tmp_path, capsys):
    assert main(["predict", "--model", str(model.path), str(drawer), "--batch-size", "0",
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "lepidopt predict: error: --batch-size 0: must be a whole number, at least 1." in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    with pytest.raises(SettingError, match=r"batch_size=0: must be a whole number"):
        model.predict_proba(np.zeros((2, 16, 16, 3)), batch_size=0)
    missing = str(tmp_path / "no-such-model.keras")  # refused before the model is looked for
    assert main(["predict", "--model", missing, str(drawer), "--out", str(tmp_path / "p.txt")]) == 2
    assert "--out " in capsys.readouterr().err
    assert main(["embed", "--model", missing, str(drawer), "--out", str(tmp_path / "e.bin")]) == 2
    assert "--out " in capsys.readouterr().err


def test_evaluate_with_no_readable_image_says_why(model, tmp_path):
    (tmp_path / "Pieridae").mkdir()
    (tmp_path / "Pieridae" / "a.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"none of its 1 images can be read \('.*a.jpg': zero-byte file\)"):
        model.evaluate(tmp_path)
