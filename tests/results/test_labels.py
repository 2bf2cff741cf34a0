"""Labels given beside embeddings, read with a real parser, and embeddings of any size that can be clustered."""

import json

import numpy as np
import pytest

from lepidopt.cli import main
from lepidopt.errors import ReportError, SettingError
from lepidopt.results import ClusteringSettings, cluster_embeddings, load_labels

CLASSES = ["Nymphalidae", "Pieridae", "Lycaenidae"]


@pytest.fixture
def points(tmp_path):
    """60 points in three blobs, saved as x.npy, with their class names."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c * 5, 0.3, size=(20, 8)) for c in range(3)]).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return [CLASSES[i // 20] for i in range(60)]


def report(tmp_path, *flags) -> int:
    return main(["report", "--embeddings", str(tmp_path / "x.npy"), "--out", str(tmp_path / "out"), *flags])


def reported_classes(tmp_path) -> list[str]:
    return json.loads((tmp_path / "out" / "metrics.json").read_text())["clustering"]["classes"]


def test_a_headerless_two_column_csv_asks_which_column_and_reads_the_one_named(points, tmp_path, capsys):
    table = tmp_path / "labels.csv"
    table.write_text("".join(f"img/{i}.jpg,{label}\n" for i, label in enumerate(points)))
    assert report(tmp_path, "--labels", str(table)) == 9
    assert ("has 2 columns (without a header); say which holds the labels with --label-column (a column's name, "
            "or its position counted from 1)") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert report(tmp_path, "--labels", str(table), "--label-column", "2") == 0
    assert reported_classes(tmp_path) == sorted(CLASSES)


def test_a_csv_header_is_not_a_label(points, tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("path,label\n" + "".join(f'"img/{i}, a.jpg",{label}\n' for i, label in enumerate(points)))
    assert report(tmp_path, "--labels", str(table)) == 0  # the column named label, a quoted comma kept in its cell
    assert reported_classes(tmp_path) == sorted(CLASSES)
    one = tmp_path / "one.csv"
    one.write_text("family\n" + "\n".join(points) + "\n")
    assert list(load_labels(one, n_points=60)) == points


def test_labels_from_text_and_npy_and_a_column_by_name(points, tmp_path):
    (tmp_path / "y.txt").write_text("\n".join(points) + "\n")
    np.save(tmp_path / "y.npy", np.array(points))
    (tmp_path / "y.csv").write_text("file,family\n" + "".join(f"{i}.jpg,{p}\n" for i, p in enumerate(points)))
    for path, column in ((tmp_path / "y.txt", None), (tmp_path / "y.npy", None), (tmp_path / "y.csv", "family")):
        assert list(load_labels(path, n_points=60, column=column)) == points
    with pytest.raises(SettingError, match=r"label_column='genus': 'y.csv' has 2 columns and its header names "
                                           r"\['file', 'family'\]; give a column name from the header or a position"):
        load_labels(tmp_path / "y.csv", n_points=60, column="genus")
    with pytest.raises(ReportError, match=r"has 61 rows for 30 embeddings"):
        load_labels(tmp_path / "y.csv", n_points=30)


def test_a_labelling_with_as_many_classes_as_points_is_refused(points, tmp_path, capsys):
    (tmp_path / "paths.txt").write_text("".join(f"img/{i}.jpg,{label}\n" for i, label in enumerate(points)))
    assert report(tmp_path, "--labels", str(tmp_path / "paths.txt")) == 9
    assert ("labels: each of the 60 points has a label of its own (e.g. 'img/0.jpg,Nymphalidae'), so no class groups "
            "points") in capsys.readouterr().err


def test_report_reads_the_embeddings_npz_that_export_writes(points, tmp_path):
    x = np.load(tmp_path / "x.npy")
    np.savez_compressed(tmp_path / "embeddings.npz", embeddings=x, labels=np.array([i // 20 for i in range(60)]),
                        classes=np.array(CLASSES), paths=np.array([f"{i}.jpg" for i in range(60)]),
                        subsets=np.array(["test"] * 60))
    assert main(["report", "--embeddings", str(tmp_path / "embeddings.npz"), "--out", str(tmp_path / "out"),
                 "--k-max", "6"]) == 0
    assert reported_classes(tmp_path) == CLASSES
    np.savez(tmp_path / "bare.npz", features=x)
    with pytest.raises(ReportError, match=r"holds \['features'\], not the array 'embeddings' that lepidopt export "
                                          r"writes \(keys: embeddings, labels, classes, paths, subsets, lineage, taxonomy\)"):
        from lepidopt.results import report_embeddings

        report_embeddings(embeddings=tmp_path / "bare.npz", out=tmp_path / "out")


@pytest.mark.parametrize("n, classes, settings", [
    (9, 3, ClusteringSettings(k_max=5)),  # UMAP's spectral start needs more points than its 10 dimensions + 1
    (7, 6, ClusteringSettings()),  # a tiny test split: k up to 15 adapts to 7 points
    (4, 2, ClusteringSettings()),
])
def test_few_points_are_clustered(n, classes, settings):
    x = np.random.default_rng(1).normal(size=(n, 32)).astype(np.float32)
    result = cluster_embeddings(x, np.arange(n) % classes, settings=settings)
    assert result.pca.k_values[-1] <= n - 1 and result.umap_2d.shape == (n, 2)


def test_too_few_points_are_refused_with_the_smallest_size_that_works():
    with pytest.raises(ReportError, match=r"3 points are too few to cluster with 2 classes and k from 2; give at "
                                          r"least 4 points"):
        cluster_embeddings(np.random.default_rng(0).normal(size=(3, 8)), np.array([0, 1, 0]))
    with pytest.raises(ReportError, match=r"6 points are too few to cluster with 5 classes and k from 5; give at "
                                          r"least 7 points"):
        cluster_embeddings(np.random.default_rng(0).normal(size=(6, 8)), np.array([0, 1, 2, 3, 4, 4]),
                           settings=ClusteringSettings(k_min=5))
