"""Clustering on embeddings whose structure is known, so the numbers can be asserted."""

import numpy as np
import pytest

from lepidopt.errors import ReportError
from lepidopt.results import ClusteringSettings, agreement, cluster_embeddings, elbow, purity

FAST = ClusteringSettings(k_min=2, k_max=8, umap_neighbors=15, view_points=300, seed=0)


def blobs(n_per=120, k=4, dim=64, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, dim))
    y = np.repeat(np.arange(k), n_per)
    return (centers[y] + rng.normal(0, spread, size=(len(y), dim))).astype(np.float32), y


def nested_rings(n_per=300, dim=32, seed=0):
    """Three concentric rings in a plane, lifted into ``dim`` dimensions by a random rotation.

    Their centres coincide, so no linear projection separates them and KMeans after PCA cuts them
    into wedges; along the manifold the rings are far apart, which a neighbour graph (UMAP) sees.
    """
    rng = np.random.default_rng(seed)
    parts, labels = [], []
    for i, radius in enumerate((1.0, 2.5, 4.0)):
        angle = rng.uniform(0, 2 * np.pi, n_per)
        parts.append(np.c_[radius * np.cos(angle), radius * np.sin(angle)] + rng.normal(0, 0.05, (n_per, 2)))
        labels.append(np.full(n_per, i))
    points = np.concatenate(parts)
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    lifted = np.concatenate([points, rng.normal(0, 0.02, size=(len(points), dim - 2))], axis=1) @ rotation
    return lifted.astype(np.float32), np.concatenate(labels)


@pytest.fixture(scope="module")
def blob_result():
    x, y = blobs()
    return cluster_embeddings(x, y, settings=FAST)


def test_well_separated_clusters_are_found_by_both_pipelines_and_the_elbow_finds_k(blob_result):
    for pipeline in (blob_result.pca, blob_result.umap):
        assert pipeline.elbow_k == 4 and pipeline.knee_found
        assert pipeline.scores_true_k["ari"] > 0.98
        assert pipeline.scores_true_k["purity"] > 0.98
        assert pipeline.inertia == sorted(pipeline.inertia, reverse=True)
    assert "about equally" in blob_result.verdict


def test_pca_keeps_95_percent_of_the_variance(blob_result):
    cumulative = blob_result.pca_cumulative_variance
    kept = blob_result.pca.dimensions
    assert cumulative[kept - 1] >= 0.95 and (kept == 2 or cumulative[kept - 2] < 0.95)
    assert cumulative[-1] == pytest.approx(1.0)
    assert blob_result.umap.dimensions == FAST.umap_components


def test_views_and_the_metrics_dictionary(blob_result):
    assert blob_result.tsne_2d.shape == blob_result.umap_2d.shape == (len(blob_result.view_index), 2)
    data = blob_result.to_dict()
    assert data["pca"]["elbow_k"] == 4 and set(data["pca"]["scores_at_true_k"]) == {
        "ari", "nmi", "homogeneity", "completeness", "v_measure", "fowlkes_mallows", "purity", "silhouette"}
    assert data["classes"] == ["0", "1", "2", "3"]


def test_nested_manifolds_are_recovered_better_by_umap_than_by_pca():
    x, y = nested_rings()
    result = cluster_embeddings(x, y, settings=FAST)
    pca_ari, umap_ari = result.pca.scores_true_k["ari"], result.umap.scores_true_k["ari"]
    assert umap_ari > 0.9
    assert pca_ari < 0.1
    assert "The UMAP pipeline agrees far better" in result.verdict


def test_agreement_and_purity_on_hand_made_labels():
    y = np.array([0, 0, 0, 1, 1, 1])
    assert purity(y, np.array([1, 1, 1, 0, 0, 0])) == 1.0
    assert purity(y, np.array([0, 0, 1, 1, 2, 2])) == pytest.approx(5 / 6)  # clusters hold 2 + 1 + 2 of their majority
    scores = agreement(y, np.array([5, 5, 5, 7, 7, 7]), np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]]))
    assert scores["ari"] == scores["nmi"] == scores["v_measure"] == 1.0 and scores["silhouette"] > 0.9


def test_elbow_without_a_knee_falls_back_to_k_min():
    inertia, k, found = elbow(np.random.default_rng(0).normal(size=(200, 2)), [2, 3], seed=0)
    assert (k, found) == (2, False) and len(inertia) == 2


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((10, 3)), np.zeros(9), r"10 embeddings but 9 labels; they must be of the same length"),
        (np.array([[1.0, np.nan]] * 20), np.arange(20) % 2, r"20 rows hold NaN or infinite values \(first: row 0\)"),
        (np.array([[1.0, np.inf]] + [[0.0, 0.0]] * 19), np.arange(20) % 2, r"1 rows hold NaN or infinite values"),
        (np.ones((20, 3)), np.zeros(20), r"labels: only one class"),
        (np.random.rand(8, 3), np.arange(8) % 2, r"8 points cannot be clustered over the k range \[2, 8\]"),
        (np.zeros(10), np.zeros(10), r"must be a 2-D array"),
    ],
)
def test_bad_embeddings_get_clear_messages(x, y, match):
    with pytest.raises(ReportError, match=match):
        cluster_embeddings(x, y, settings=FAST)
