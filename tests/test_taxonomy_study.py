"""A taxonomy study end to end on a tree-structured collection the test draws: searched from the command line
with every level learned, exported with its tree, used to predict every level, reported with per-level
metrics, the tree's recall and the clustering's agreement with each level (checked in a real browser), and
searched by Keras Tuner too."""

import csv
import json

import pytest
import yaml

from conftest import CHROMIUM, TINY_SPACE, assert_every_figure_draws
import lepidopt
from lepidopt import load_model
from lepidopt.cli import main
from lepidopt.data import DataSpec, make_demo_collection, read_records

pytestmark = pytest.mark.slow  # the study trains

LEVELS = ("family", "subfamily", "genus", "species")


def _tiny_taxonomy_space(folder):
    space = yaml.safe_load(TINY_SPACE.read_text())
    space["name"] = "tiny-taxonomy"
    space["params"]["sampling.level"] = {"choice": ["family", "genus"]}
    space["params"]["taxonomy.fine_weight"] = {"float": [0.5, 4.0], "log": True}
    space["baseline"].update({"sampling.level": "family", "taxonomy.fine_weight": 1.0})
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return str(path)


@pytest.fixture(scope="module")
def tree_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("taxonomy-study")
    demo = make_demo_collection(folder / "demo", scale=0.01, image_size=32, manifest=True, genera=3, species=2)
    results = folder / "results"
    common = ["--data", str(demo.manifest), "--levels", ",".join(LEVELS), "--min-per-class", "20",
              "--space", _tiny_taxonomy_space(folder), "--results-dir", str(results)]
    assert main(["search", "--study", "tree", *common, "--objective", "species.balanced_accuracy",
                 "--decode", "consistent", "--n-trials", "3"]) == 0
    return {"results": results, "demo": demo, "common": common}


def test_export_carries_the_tree_and_scores_every_level_on_real_paths(tree_study, tmp_path):
    results = tree_study["results"]
    assert main(["export", "--study", "tree", "--results-dir", str(results)]) == 0
    metrics = json.loads((results / "tree" / "best" / "metrics.json").read_text())
    test = metrics["test"]
    assert list(test["levels"]) == list(LEVELS) and test["decode"] == "consistent"
    assert test["tree"]["consistent_share"] == 1.0
    assert metrics["objective"] == "species.balanced_accuracy"
    assert metrics["retrained_validation_value"] == metrics["retrained_validation_metrics"]["species.balanced_accuracy"]
    model = load_model(study="tree", results_dir=results)
    assert model.taxonomy is not None and model.taxonomy.levels == LEVELS
    assert len(model.classes) == sum(len(c) for c in model.taxonomy.classes)
    # evaluate, on the test images listed in a CSV with a column per level, agrees with export's test metrics
    split = json.loads((results / "tree" / "split.json").read_text())
    lineage = {r.path: r.lineage for r in read_records(DataSpec(str(tree_study["demo"].manifest), levels=LEVELS))}
    table = tmp_path / "test.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", *LEVELS])
        for item in split["items"]:
            if item["subset"] == "test":
                writer.writerow([item["path"], *lineage[item["path"]]])
    genus = model.evaluate(str(table), label_level="genus")
    assert genus["label_level"] == "genus" and genus["decode"] == "consistent"
    assert genus["n_images"] == test["levels"]["genus"]["n_images"]
    assert genus["accuracy"] == pytest.approx(test["levels"]["genus"]["accuracy"], abs=1.01 / genus["n_images"])


def test_predict_writes_every_levels_label_and_probability_on_a_path_of_the_tree(tree_study, tmp_path):
    results = tree_study["results"]
    out = tmp_path / "predictions.csv"
    images = sorted(tree_study["demo"].root.glob("*/*.jpg"))[:12]
    assert main(["predict", "--study", "tree", "--results-dir", str(results), "--out", str(out),
                 *map(str, images)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12
    assert {f"{level}{suffix}" for level in LEVELS for suffix in ("", "_probability")} <= set(rows[0])
    taxonomy = load_model(study="tree", results_dir=results).taxonomy
    real = {tuple(taxonomy.classes[d][c] for d, c in enumerate(path) if c >= 0) for path in
            taxonomy.leaf_paths.tolist()}
    for row in rows:
        path = tuple(row[level] for level in LEVELS if row[level])
        assert path in real
        assert all(0.0 <= float(row[f"{level}_probability"]) <= 1.0 for level in LEVELS if row[level])


def test_the_report_compares_the_clusters_with_every_level(tree_study, tmp_path):
    results = tree_study["results"]
    assert main(["report", "--study", "tree", "--results-dir", str(results), "--no-dashboard"]) == 0
    report = json.loads((results / "tree" / "report" / "metrics.json").read_text())
    levels = report["clustering"]["levels"]
    assert list(levels) == list(LEVELS)
    assert levels["family"]["k"] == 6
    assert "level most closely" in report["clustering"]["verdict"]
    page = (results / "tree" / "report" / "index.html")
    source = page.read_text()
    assert "Mistake severity" in source and 'id="sunburst"' in source
    if CHROMIUM is not None:
        figures = assert_every_figure_draws(page, tmp_path / "taxonomy-report.png")
        assert {"sunburst", "sankey-pca", "sankey-umap", "confusion"} <= set(figures)


def test_keras_tuner_searches_a_taxonomy_study_with_the_same_objective_names(tree_study):
    results = tree_study["results"]
    assert main(["search", "--study", "tree-kt", *tree_study["common"], "--engine", "keras-tuner",
                 "--objective", "mean.macro_f1", "--n-trials", "2"]) == 0
    status = lepidopt.status(study="tree-kt", results_dir=results)
    assert status.engine.startswith("keras-tuner") and status.objective == "mean.macro_f1" and status.n_finished == 2
    best = next(t for t in status.trials if t.number == status.best.number)
    assert best.value == max(t.value for t in status.trials if t.value is not None)
