"""Clustering of embeddings: Scale-PCA(95%)-KMeans against Scale-UMAP-KMeans, each with k by the
elbow and at k = number of classes, scored against the true labels. Computation only; no drawing."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Mapping

import numpy as np

from ..errors import ReportError, SettingError

__all__ = ["ClusteringSettings", "PipelineResult", "ClusteringResult", "cluster_embeddings", "check_embeddings",
           "agreement", "elbow", "purity"]

log = logging.getLogger("lepidopt")


DEFAULT_K_MAX = 15


@dataclasses.dataclass(frozen=True)
class ClusteringSettings:
    k_min: int = 2
    k_max: int | None = None  # None: 15, or one less than the number of points when they are fewer
    variance: float = 0.95  # share of the variance the PCA keeps
    umap_neighbors: int = 30
    umap_min_dist: float = 0.3
    umap_components: int = 10
    umap_input: str = "pca"  # "pca": the 95%-variance projection; "scaled": all standardised features
    elbow_sample: int = 10_000  # points the elbow curves are drawn from (k is then fitted on all points)
    silhouette_sample: int = 5_000
    view_points: int = 4_000  # points shown in the 2-D t-SNE and UMAP views
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k_min < 2:
            raise SettingError("k_min", self.k_min, "must be at least 2 (one cluster explains nothing).")
        if self.k_max is not None and self.k_max <= self.k_min:
            raise SettingError("k_max", self.k_max, f"must be above k_min, {self.k_min}.")
        if not 0 < self.variance <= 1:
            raise SettingError("variance", self.variance, "the share of variance PCA keeps must lie in (0, 1].")
        if self.umap_input not in ("pca", "scaled"):
            raise SettingError("umap_input", self.umap_input, "must be 'pca' or 'scaled'.")
        if self.umap_components < 2:
            raise SettingError("umap_components", self.umap_components, "must be at least 2.")
        if self.umap_neighbors < 2:
            raise SettingError("umap_neighbors", self.umap_neighbors, "must be at least 2.")

    def k_range(self, n_points: int) -> tuple[int, int]:
        """(k_min, k_max) for ``n_points`` points: k_max, when not given, is 15 or one less than the points, and
        above k_min."""
        if self.k_max is not None:
            return self.k_min, self.k_max
        return self.k_min, max(self.k_min + 1, min(DEFAULT_K_MAX, n_points - 1))


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    name: str  # "pca" or "umap"
    dimensions: int  # of the space KMeans runs in
    k_values: list[int]
    inertia: list[float]
    elbow_k: int
    knee_found: bool  # False when the curve has no knee and k_min was taken
    labels_elbow: np.ndarray
    labels_true_k: np.ndarray
    scores_elbow: dict[str, float]
    scores_true_k: dict[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"dimensions": self.dimensions, "k_values": self.k_values, "inertia": self.inertia,
                "elbow_k": self.elbow_k, "knee_found": self.knee_found, "scores_at_elbow_k": self.scores_elbow,
                "scores_at_true_k": self.scores_true_k, "seconds": round(self.seconds, 2)}


@dataclasses.dataclass(frozen=True)
class LevelAgreement:
    """One taxonomy level against both pipelines' clusters: KMeans at k = the level's classes, and the pipeline's
    own elbow-k clusters, each scored on the points placed at that level."""

    name: str
    classes: list[str]
    labels: np.ndarray  # int index into classes, -1 where a point is not placed at this level
    k: int
    clusters: dict[str, np.ndarray]  # pipeline -> clusters at k
    at_level_k: dict[str, dict[str, float]]  # pipeline -> scores
    at_elbow_k: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"classes": self.classes, "k": self.k, "n_placed": int((self.labels >= 0).sum()),
                "at_level_k": self.at_level_k, "at_elbow_k": self.at_elbow_k}


@dataclasses.dataclass(frozen=True)
class ClusteringResult:
    n_points: int
    n_features: int
    classes: list[str]
    labels: np.ndarray  # int index into classes
    pca_cumulative_variance: np.ndarray
    pca: PipelineResult
    umap: PipelineResult
    view_index: np.ndarray  # which points the 2-D views show
    tsne_2d: np.ndarray
    umap_2d: np.ndarray
    verdict: str
    settings: ClusteringSettings
    levels: dict[str, LevelAgreement] = dataclasses.field(default_factory=dict)  # a taxonomy's, coarse to fine

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_points": self.n_points,
            "n_features": self.n_features,
            "classes": self.classes,
            "settings": dataclasses.asdict(self.settings),
            "pca_components_kept": self.pca.dimensions,
            "pca_cumulative_variance": [round(float(v), 6) for v in self.pca_cumulative_variance],
            "pca": self.pca.to_dict(),
            "umap": self.umap.to_dict(),
            "view_points": int(len(self.view_index)),
            "verdict": self.verdict,
            **({"levels": {name: level.to_dict() for name, level in self.levels.items()}} if self.levels else {}),
        }


def check_embeddings(embeddings: np.ndarray, labels: np.ndarray, settings: ClusteringSettings) -> None:
    """Refuse input the pipelines cannot give an honest answer on, saying what is wrong and how to fix it."""
    if embeddings.ndim != 2:
        raise ReportError("embeddings", f"must be a 2-D array (points x features), got shape {embeddings.shape}.")
    if len(embeddings) != len(labels):
        raise ReportError(
            "embeddings and labels", f"{len(embeddings)} embeddings but {len(labels)} labels; they must be of the "
            "same length, one label per row."
        )
    bad = ~np.isfinite(embeddings)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ReportError(
            "embeddings", f"{len(rows)} rows hold NaN or infinite values (first: row {rows[0]}); "
            "remove or repair them before clustering."
        )
    n_points, n_classes = len(embeddings), len(np.unique(labels))
    if n_classes < 2:
        raise ReportError("labels", f"only one class ({np.unique(labels)[0].item()!r}); agreement with labels needs 2 "
                          "or more.")
    if n_classes == n_points:
        raise ReportError(
            "labels", f"each of the {n_points} points has a label of its own (e.g. {labels[0].item()!r}), so no class "
            "groups points for clusters to agree with.",
            fix="Give labels that group points (was a path or id column read as the label?), or more points of each "
                "class."
        )
    # An elbow curve needs two values of k below the number of points, and KMeans at k = classes one point more.
    smallest = max(settings.k_min + 2, n_classes + 1)
    if n_points < smallest:
        raise ReportError(
            "embeddings", f"{n_points} points are too few to cluster with {n_classes} classes and k from "
            f"{settings.k_min}; "
            f"give at least {smallest} points."
        )
    k_min, k_max = settings.k_range(n_points)
    if k_max >= n_points:
        raise ReportError(
            "embeddings", f"{n_points} points cannot be clustered over the k range [{k_min}, {k_max}]; give more "
            "points than k_max, or lower k_max (left out, it adapts to the number of points)."
        )


def cluster_embeddings(embeddings: np.ndarray, labels: np.ndarray, *, classes: list[str] | None = None,
                       settings: ClusteringSettings | None = None,
                       levels: Mapping[str, tuple[np.ndarray, list[str]]] | None = None) -> ClusteringResult:
    """Both pipelines on ``embeddings`` (points x features) against integer or string ``labels``; with
    ``levels`` (a taxonomy's, coarse to fine: each level's class indices, -1 where not placed, and names) both
    pipelines' clusters are also scored against every level."""
    settings = settings or ClusteringSettings()
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels)
    check_embeddings(embeddings, labels, settings)
    if classes is None:
        classes_arr, y = np.unique(labels, return_inverse=True)
        classes = [str(c) for c in classes_arr]
    else:
        y = labels.astype(np.int64)
    n_true = len(np.unique(y))
    k_min, k_max = settings.k_range(len(y))
    k_values = list(range(k_min, max(k_max, n_true) + 1))
    rng = np.random.default_rng(settings.seed)

    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(embeddings.astype(np.float32, copy=False)).astype(np.float32)

    started = time.perf_counter()
    reduced, cumulative = _pca(scaled, settings.variance, settings.seed)
    pca = _pipeline("pca", reduced, y, k_values, n_true, settings, rng, started)

    # UMAP's neighbour search in all 2048 dimensions costs ~25 s more on 50,000 points than in the few
    # hundred that hold 95% of the variance, for nearly the same neighbours (benchmarks/report_speed.py).
    umap_input = reduced if settings.umap_input == "pca" else scaled
    started = time.perf_counter()
    umap_space = _umap(umap_input, settings.umap_components, settings)
    umap = _pipeline("umap", umap_space, y, k_values, n_true, settings, rng, started)

    view_index = np.sort(rng.choice(len(y), size=min(settings.view_points, len(y)), replace=False))
    tsne_2d = _tsne(reduced[view_index], settings.seed)
    umap_2d = _umap(umap_input[view_index], 2, settings)
    by_level = {name: _level_agreement(name, np.asarray(level_labels), list(level_classes),
                                       {"pca": (reduced, pca), "umap": (umap_space, umap)}, settings, rng)
                for name, (level_labels, level_classes) in (levels or {}).items()}
    return ClusteringResult(
        n_points=len(y), n_features=embeddings.shape[1], classes=list(classes), labels=y,
        pca_cumulative_variance=cumulative, pca=pca, umap=umap, view_index=view_index, tsne_2d=tsne_2d,
        umap_2d=umap_2d, verdict=verdict(pca, umap) + level_verdict(by_level, pca, umap), settings=settings,
        levels=by_level,
    )


def _level_agreement(name: str, labels: np.ndarray, classes: list[str],
                     pipelines: Mapping[str, tuple[np.ndarray, PipelineResult]], settings: ClusteringSettings,
                     rng: np.random.Generator) -> LevelAgreement:
    placed = labels >= 0
    k = max(2, min(len(np.unique(labels[placed])), int(placed.sum()) - 1))
    clusters, at_level_k, at_elbow_k = {}, {}, {}
    for pipeline, (space, result) in pipelines.items():
        sample = space if len(space) <= settings.elbow_sample else \
            space[rng.choice(len(space), settings.elbow_sample, replace=False)]
        clusters[pipeline] = result.labels_true_k if k == int(result.labels_true_k.max()) + 1 else \
            _kmeans(space, sample, k, settings.seed)
        at_level_k[pipeline] = agreement(labels[placed], clusters[pipeline][placed], space[placed],
                                         sample_size=settings.silhouette_sample, seed=settings.seed)
        at_elbow_k[pipeline] = agreement(labels[placed], result.labels_elbow[placed], space[placed],
                                         sample_size=settings.silhouette_sample, seed=settings.seed)
    return LevelAgreement(name=name, classes=classes, labels=labels, k=k, clusters=clusters, at_level_k=at_level_k,
                          at_elbow_k=at_elbow_k)


def level_verdict(levels: Mapping[str, LevelAgreement], pca: PipelineResult, umap: PipelineResult) -> str:
    """Which level each pipeline's own (elbow-k) clusters follow most closely, by ARI; empty without levels."""
    if not levels:
        return ""
    sentences = []
    for pipeline, result in (("UMAP", umap), ("PCA", pca)):
        ari = {name: level.at_elbow_k[pipeline.lower()]["ari"] for name, level in levels.items()}
        best = max(ari, key=lambda name: ari[name])
        others = ", ".join(f"{ari[name]:.3f} for {name}" for name in ari if name != best)
        sentences.append(f"the {pipeline} pipeline's {result.elbow_k} clusters follow the {best} level most closely "
                         f"(ARI {ari[best]:.3f}; {others})")
    return " Against the taxonomy's levels, " + "; ".join(sentences) + "."


def _pca(scaled: np.ndarray, variance: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA keeping ``variance`` of the variance. The covariance route costs one pass over the data and a
    features x features eigendecomposition, so it is exact and fast when points far outnumber features."""
    from sklearn.decomposition import PCA

    solver = "covariance_eigh" if scaled.shape[0] >= 2 * scaled.shape[1] else "full"
    full = PCA(svd_solver=solver, random_state=seed).fit(scaled)
    cumulative = np.cumsum(full.explained_variance_ratio_)
    keep = int(np.searchsorted(cumulative, variance - 1e-9) + 1)
    keep = min(max(keep, 2), scaled.shape[1])
    reduced = (scaled - full.mean_) @ full.components_[:keep].T
    return reduced.astype(np.float32), cumulative


def _umap(data: np.ndarray, components: int, settings: ClusteringSettings) -> np.ndarray:
    import sys
    import warnings

    if "tensorflow" not in sys.modules:
        # umap's package import pulls in TensorFlow for ParametricUMAP, which is not used here: 3 s saved.
        sys.modules.setdefault("umap.parametric_umap", None)  # type: ignore[arg-type]  # None: 'not importable'
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that a random_state disables parallelism
        # The spectral start needs more points than dimensions + 1 (scipy refuses "k >= N" otherwise).
        init = "spectral" if len(data) > components + 1 else "random"
        model = umap.UMAP(n_neighbors=min(settings.umap_neighbors, len(data) - 1), min_dist=settings.umap_min_dist,
                          n_components=components, random_state=settings.seed, init=init)
        return model.fit_transform(data).astype(np.float32)


def _tsne(data: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(5.0, (len(data) - 1) / 3), len(data) - 1.0)  # t-SNE needs it below the points
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(data).astype(np.float32)


def _pipeline(name: str, space: np.ndarray, y: np.ndarray, k_values: list[int], n_true: int,
              settings: ClusteringSettings, rng: np.random.Generator, started: float) -> PipelineResult:
    sample = space if len(space) <= settings.elbow_sample else \
        space[rng.choice(len(space), settings.elbow_sample, replace=False)]
    inertia, k, found = elbow(sample, k_values, seed=settings.seed)
    at_elbow = _kmeans(space, sample, k, settings.seed)
    at_true = at_elbow if k == n_true else _kmeans(space, sample, n_true, settings.seed)
    scores_elbow = agreement(y, at_elbow, space, sample_size=settings.silhouette_sample, seed=settings.seed)
    scores_true = scores_elbow if k == n_true else agreement(y, at_true, space, sample_size=settings.silhouette_sample,
                                                              seed=settings.seed)
    seconds = time.perf_counter() - started
    log.info("%s pipeline: %d dimensions, elbow k=%d, ARI at k=%d %.3f (%.1f s)", name, space.shape[1], k, n_true,
             scores_true["ari"], seconds)
    return PipelineResult(name=name, dimensions=int(space.shape[1]), k_values=k_values, inertia=inertia, elbow_k=k,
                          knee_found=found, labels_elbow=at_elbow, labels_true_k=at_true, scores_elbow=scores_elbow,
                          scores_true_k=scores_true, seconds=seconds)


def _kmeans(data: np.ndarray, sample: np.ndarray, k: int, seed: int) -> np.ndarray:
    """KMeans on all points, started from the best of 10 k-means++ runs on the sample: as robust as
    n_init=10 on everything, at the cost of one run on everything."""
    from sklearn.cluster import KMeans

    if len(sample) == len(data):
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(data)
    centres = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(sample).cluster_centers_
    return KMeans(n_clusters=k, init=centres, n_init=1, random_state=seed).fit_predict(data)


def elbow(data: np.ndarray, k_values: list[int], *, seed: int) -> tuple[list[float], int, bool]:
    """KMeans inertia for each k and the k at the knee of that curve (kneed); k_min when there is no knee."""
    from kneed import KneeLocator
    from sklearn.cluster import KMeans

    inertia = [float(KMeans(n_clusters=k, n_init=2, random_state=seed).fit(data).inertia_) for k in k_values]
    knee = KneeLocator(k_values, inertia, curve="convex", direction="decreasing").knee
    return inertia, int(knee) if knee is not None else k_values[0], knee is not None


def purity(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of points whose cluster's most common true label is their own."""
    from sklearn.metrics.cluster import contingency_matrix

    table = contingency_matrix(y_true, y_pred)
    return float(table.max(axis=0).sum() / table.sum())


def agreement(y_true: np.ndarray, y_pred: np.ndarray, space: np.ndarray, *, sample_size: int = 5000,
              seed: int = 0) -> dict[str, float]:
    from sklearn import metrics

    homogeneity, completeness, v_measure = metrics.homogeneity_completeness_v_measure(y_true, y_pred)
    silhouette = float("nan")
    if 1 < len(np.unique(y_pred)) < len(y_pred):
        silhouette = float(metrics.silhouette_score(space, y_pred, sample_size=min(sample_size, len(y_pred)),
                                                    random_state=seed))
    return {
        "ari": float(metrics.adjusted_rand_score(y_true, y_pred)),
        "nmi": float(metrics.normalized_mutual_info_score(y_true, y_pred)),
        "homogeneity": float(homogeneity),
        "completeness": float(completeness),
        "v_measure": float(v_measure),
        "fowlkes_mallows": float(metrics.fowlkes_mallows_score(y_true, y_pred)),
        "purity": purity(y_true, y_pred),
        "silhouette": silhouette,
    }


def verdict(pca: PipelineResult, umap: PipelineResult) -> str:
    """Which pipeline agrees better with the labels, in plain words, judged on ARI at k = number of classes."""
    scores = {"PCA": pca.scores_true_k, "UMAP": umap.scores_true_k}
    gap = abs(scores["PCA"]["ari"] - scores["UMAP"]["ari"])
    k = int(pca.labels_true_k.max()) + 1
    if gap < 0.02:
        lead = (f"Both pipelines agree with the true labels about equally: ARI {scores['PCA']['ari']:.3f} for PCA "
                f"and {scores['UMAP']['ari']:.3f} for UMAP")
    else:
        better, worse = ("UMAP", "PCA") if scores["UMAP"]["ari"] > scores["PCA"]["ari"] else ("PCA", "UMAP")
        size = "far" if gap >= 0.2 else "clearly" if gap >= 0.05 else "slightly"
        lead = (f"The {better} pipeline agrees {size} better with the true labels than the {worse} pipeline: "
                f"ARI {scores[better]['ari']:.3f} against {scores[worse]['ari']:.3f}, "
                f"NMI {scores[better]['nmi']:.3f} against {scores[worse]['nmi']:.3f}")
    return (f"{lead}, with k = {k} clusters, the number of classes. "
            f"By the elbow, PCA would choose k = {pca.elbow_k} and UMAP k = {umap.elbow_k}.")
