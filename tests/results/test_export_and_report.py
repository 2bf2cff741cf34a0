"""Export, report and dashboard on a real (tiny) study: real training, a real SQLite storage, real files."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import optuna
import pytest

from conftest import TINY_SPACE
from lepidopt.cli import main
from lepidopt.results import ClusteringSettings, export_best, report_study
from lepidopt.results._html import SECTIONS
from lepidopt.api import search


@pytest.fixture(scope="module")
def study_dir(demo_folder, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    search(study="r", data=str(demo_folder), space=str(TINY_SPACE), results_dir=results, n_trials=2,
           sampler="random", pruner="none", strategy="joint")  # trial 0, the baseline, fine-tunes
    return results


@pytest.fixture(scope="module")
def exported(study_dir):
    return export_best(study="r", results_dir=study_dir)


SMALL = ClusteringSettings(k_min=2, k_max=6, umap_neighbors=5)  # the tiny study's test split holds 13 images


@pytest.fixture(scope="module")
def reported(study_dir, exported):
    return report_study(study="r", results_dir=study_dir, settings=SMALL)


@pytest.mark.slow
def test_export_reproduces_the_trial_and_evaluates_on_the_test_split(exported, study_dir):
    m = exported.metrics
    assert abs(m["retrained_validation_value"] - m["trial_validation_value"]) <= 0.05
    test = m["test"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "top_3_accuracy", "top_5_accuracy"):
        assert 0.0 <= test[key] <= 1.0
    n_test = test["n_images"]
    counts = np.array(test["confusion_matrix"]["counts"])
    assert counts.sum() == n_test and counts.shape == (6, 6)
    assert np.allclose(np.array(test["confusion_matrix"]["row_normalised"]).sum(axis=1), 1.0)
    assert [r["support"] for r in test["per_class"]] == counts.sum(axis=1).tolist()
    assert test["accuracy"] == pytest.approx(np.trace(counts) / n_test)
    on_disk = json.loads((exported.folder / "metrics.json").read_text())
    assert on_disk["trial"] == m["trial"] and on_disk["test"] == test
    with np.load(exported.folder / "embeddings.npz") as saved:
        assert saved["embeddings"].shape[0] == n_test and set(saved["subsets"]) == {"test"}


@pytest.mark.slow
def test_the_exported_model_loads_in_a_fresh_process_and_predicts_the_same(exported, study_dir):
    code = (
        "import sys, numpy as np\n"
        "from lepidopt.model import load_classifier\n"
        "model = load_classifier(sys.argv[1])\n"
        "x = np.load(sys.argv[2])\n"
        "np.save(sys.argv[3], model.predict(x, verbose=0))\n"
    )
    from lepidopt.model import load_classifier

    images = np.random.default_rng(0).uniform(0, 255, (5, 32, 32, 3)).astype("float32")
    np.save(study_dir / "x.npy", images)
    subprocess.run([sys.executable, "-c", code, str(exported.folder / "model.keras"), str(study_dir / "x.npy"),
                    str(study_dir / "p.npy")], check=True, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    here = load_classifier(exported.folder / "model.keras").predict(images, verbose=0)
    assert np.allclose(np.load(study_dir / "p.npy"), here, atol=1e-5)


@pytest.mark.slow
def test_the_report_is_self_contained_and_has_every_section(reported):
    page = reported.index.read_text()
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)  # plotly.js itself holds URL strings
    assert not re.search(r"""(src|href|url)\(?=?["']?(https?:)?//""", markup)
    assert "cdn" not in markup
    assert "plotly" in page.lower() and page.count("Plotly.newPlot") >= 12
    for key, title in SECTIONS.items():
        assert f'id="{key}"' in page and title in page
    metrics = json.loads((reported.index.parent / "metrics.json").read_text())
    assert set(metrics) == {"summary", "export", "test", "clustering"}
    c = metrics["clustering"]
    assert c["verdict"] in page and f"{c['pca_components_kept']} components" in page
    assert f"{c['pca']['scores_at_true_k']['ari']:.4f}" in page and f"{metrics['test']['accuracy']:.4f}" in page


@pytest.mark.slow
def test_the_report_is_attached_to_the_study_for_optuna_dashboard(reported, study_dir):
    from optuna.artifacts import get_all_artifact_meta
    from optuna_dashboard import get_note

    study = optuna.load_study(study_name="r", storage=f"sqlite:///{study_dir}/r/study.db")
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    plots = [k for k in system_attrs if "plot_data" in k and "lepidopt-" in k]
    assert any("lepidopt-confusion" in k for k in plots) and any("lepidopt-sankey-umap" in k for k in plots)
    assert "**Verdict.**" in get_note(study)
    names = {meta.filename for meta in get_all_artifact_meta(study)}
    assert {"model.keras", "metrics.json", "index.html"} <= names
    assert len(list((study_dir / "r" / "artifacts").iterdir())) == 4
    report_study(study="r", results_dir=study_dir, settings=SMALL)  # unchanged files are not uploaded twice
    assert len(list((study_dir / "r" / "artifacts").iterdir())) <= 6


@pytest.mark.slow
def test_dashboard_serves_the_study_on_localhost(study_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "lepidopt", "dashboard", "--study", "r", "--results-dir",
                               str(study_dir), "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert f"http://127.0.0.1:{port}/" in server.stdout.readline()
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as answer:
                    studies = json.loads(answer.read())
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("optuna-dashboard did not answer")
        assert [s["study_name"] for s in studies["study_summaries"]] == ["r"]
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_report_on_embeddings_a_user_brings(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c * 5, 0.3, size=(60, 16)) for c in range(3)]).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "labels.txt").write_text("\n".join(["a"] * 60 + ["b"] * 60 + ["c"] * 60) + "\n")
    code = main(["report", "--embeddings", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "labels.txt"),
                 "--out", str(tmp_path / "out"), "--k-max", "6"])
    assert code == 0
    page = (tmp_path / "out" / "index.html").read_text()
    assert 'id="verdict"' in page and 'id="summary"' not in page
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["clustering"]["pca"]["elbow_k"] == 3 and metrics["clustering"]["classes"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "x, labels, message",
    [
        (np.zeros((30, 4)), "\n".join("ab"[i % 2] for i in range(29)), "holds 29 labels for 30 embeddings"),
        (np.full((30, 4), np.nan), "\n".join("ab"[i % 2] for i in range(30)), "rows hold NaN or infinite values"),
        (np.random.rand(30, 4), "\n".join("a" * 30), "only one class"),
        (np.random.rand(3, 4), "a\nb\na", "3 points are too few to cluster with 2 classes and k from 2; give at "
                                          "least 4 points"),
    ],
)
def test_bad_embeddings_fail_clearly_and_destroy_nothing(tmp_path, capsys, x, labels, message):
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "y.txt").write_text(labels)
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("an earlier report")
    code = main(["report", "--embeddings", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.txt"),
                 "--out", str(out)])
    assert code == 9
    assert message in capsys.readouterr().err
    assert (out / "index.html").read_text() == "an earlier report"


def test_a_study_without_a_completed_trial_cannot_be_reported(demo_folder, tmp_path, capsys):
    summary = search(study="empty", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path,
                     create_only=True)
    study = optuna.load_study(study_name="empty", storage=summary.run.storage)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    assert main(["report", "--study", "empty", "--results-dir", str(tmp_path)]) == 9
    assert "has no completed trial yet (1 trials: 1 fail)" in capsys.readouterr().err
    assert main(["export", "--study", "empty", "--results-dir", str(tmp_path)]) == 9
    assert not (tmp_path / "empty" / "best").exists()


@pytest.mark.slow
def test_the_report_of_a_small_test_split_adapts_its_k_range(study_dir, exported):
    result = report_study(study="r", results_dir=study_dir, dashboard=False)  # the default k range: up to 15
    n = result.metrics["clustering"]["n_points"]
    assert n < 15 and result.clustering.pca.k_values == list(range(2, n))
