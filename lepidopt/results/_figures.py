"""Plotly figures drawn from data already computed (clustering results, test metrics, the study)."""

from __future__ import annotations

import logging
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ._clustering import ClusteringResult, PipelineResult

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

__all__ = [
    "clustering_figures",
    "confusion_figure",
    "elbow_figure",
    "pca_variance_figure",
    "level_sankey_figure",
    "sankey_figure",
    "scatter_figure",
    "sunburst_figure",
    "study_figures",
]

log = logging.getLogger("lepidopt")
_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=60, b=50))


def _go() -> ModuleType:
    import plotly.graph_objects as go

    return go


def confusion_figure(confusion: dict[str, Any], *, normalised: bool = True) -> go.Figure:
    go = _go()
    matrix = np.array(confusion["row_normalised" if normalised else "counts"])
    counts = np.array(confusion["counts"])
    classes = confusion["classes"]
    text = [[f"{counts[i][j]}<br>{matrix[i][j]:.0%}" if normalised else str(counts[i][j]) for j in range(len(classes))]
            for i in range(len(classes))]
    fig = go.Figure(go.Heatmap(z=matrix, x=classes, y=classes, text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=1 if normalised else None,
                               colorbar=dict(title="share of row" if normalised else "images")))
    fig.update_layout(title="Confusion matrix on the test split (rows: true class, share of the row)",
                      xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed", **_LAYOUT)
    return fig


def pca_variance_figure(cumulative: np.ndarray, *, variance: float, kept: int) -> go.Figure:
    go = _go()
    x = np.arange(1, len(cumulative) + 1)
    fig = go.Figure(go.Scatter(x=x, y=cumulative, mode="lines", name="cumulative explained variance"))
    fig.add_hline(y=variance, line_dash="dash", line_color="firebrick",
                  annotation_text=f"{variance:.0%} of the variance", annotation_position="bottom right")
    fig.add_vline(x=kept, line_dash="dot", line_color="gray", annotation_text=f"{kept} components kept")
    fig.update_layout(title="PCA: cumulative explained variance", xaxis_title="principal components",
                      yaxis_title="explained variance", yaxis_range=[0, 1.02], **_LAYOUT)
    return fig


def elbow_figure(pipeline: PipelineResult) -> go.Figure:
    go = _go()
    name = pipeline.name.upper()
    fig = go.Figure(go.Scatter(x=pipeline.k_values, y=pipeline.inertia, mode="lines+markers", name="inertia"))
    chosen = pipeline.k_values.index(pipeline.elbow_k)
    fig.add_trace(go.Scatter(x=[pipeline.elbow_k], y=[pipeline.inertia[chosen]], mode="markers", name="elbow",
                             marker=dict(size=16, color="firebrick", symbol="circle-open", line=dict(width=3))))
    how = "elbow" if pipeline.knee_found else "no knee found; smallest k"
    fig.update_layout(title=f"{name} pipeline: KMeans inertia by k (k = {pipeline.elbow_k}, {how})",
                      xaxis_title="k (clusters)", yaxis_title="inertia (within-cluster sum of squares)", **_LAYOUT)
    return fig


def scatter_figure(points: np.ndarray, groups: np.ndarray, names: list[str], *, title: str) -> go.Figure:
    go = _go()
    fig = go.Figure()
    for g in np.unique(groups):
        mask = groups == g
        fig.add_trace(go.Scattergl(x=points[mask, 0], y=points[mask, 1], mode="markers", name=names[int(g)],
                                   marker=dict(size=4, opacity=0.7)))
    fig.update_layout(title=title, xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False),
                      legend=dict(itemsizing="constant"), **_LAYOUT)
    return fig


def sankey_figure(labels: np.ndarray, clusters: np.ndarray, classes: list[str], *, title: str) -> go.Figure:
    """Flows from each true class (left) to each cluster (right), widths by number of points."""
    go = _go()
    fig = go.Figure(_sankey_trace(labels, clusters, classes))
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def level_sankey_figure(result: ClusteringResult, pipeline: str, *, title: str) -> go.Figure:
    """A Sankey per taxonomy level, from the level's classes to the pipeline's clusters at k = its classes, one
    shown at a time by a level picker; points not placed at a level are left out of its flows."""
    go = _go()
    fig = go.Figure()
    names = list(result.levels)
    for i, level in enumerate(result.levels.values()):
        placed = level.labels >= 0
        trace = _sankey_trace(level.labels[placed], level.clusters[pipeline][placed], level.classes)
        trace.visible = i == 0
        fig.add_trace(trace)
    buttons = [dict(label=f"{name} (k = {result.levels[name].k})", method="update",
                    args=[{"visible": [j == i for j in range(len(names))]}]) for i, name in enumerate(names)]
    fig.update_layout(title=title, updatemenus=[dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.12,
                                                     yanchor="top", showactive=True)], **_LAYOUT)
    return fig


def sunburst_figure(taxonomy: dict[str, Any], levels: dict[str, Any]) -> go.Figure:
    """The tree from its coarsest level outwards, each class sized by its test images and coloured by its
    recall (``levels``: the test metrics per level, as export writes them)."""
    go = _go()
    ids, names, parents, values, recall = [], [], [], [], []
    for depth, level in enumerate(taxonomy["levels"]):
        rows = {row["class"]: row for row in levels[level]["per_class"]}
        for index, name in enumerate(taxonomy["classes"][depth]):
            row = rows[name]
            if row["support"] == 0:
                continue
            ids.append(f"{depth}/{name}")
            names.append(name)
            parent = taxonomy["parents"][depth][index]
            parents.append("" if depth == 0 else f"{depth - 1}/{taxonomy['classes'][depth - 1][parent]}")
            values.append(row["support"])
            recall.append(row["recall"])
    fig = go.Figure(go.Sunburst(ids=ids, labels=names, parents=parents, values=values, branchvalues="total",
                                marker=dict(colors=recall, colorscale="RdYlGn", cmin=0.0, cmax=1.0,
                                            colorbar=dict(title="recall")),
                                customdata=recall, hovertemplate="%{label}: recall %{customdata:.2f}, "
                                "%{value} test images<extra></extra>"))
    fig.update_layout(title="The taxonomy on the test split: size by images, colour by recall", height=620,
                      **_LAYOUT)
    return fig


def _sankey_trace(labels: np.ndarray, clusters: np.ndarray, classes: list[str]) -> Any:
    go = _go()
    n_classes, cluster_ids = len(classes), np.unique(clusters)
    table = np.zeros((n_classes, len(cluster_ids)), dtype=int)
    for i, c in enumerate(cluster_ids):
        table[:, i] = np.bincount(labels[clusters == c], minlength=n_classes)
    source, target, value = [], [], []
    for i in range(n_classes):
        for j in range(len(cluster_ids)):
            if table[i, j]:
                source.append(i)
                target.append(n_classes + j)
                value.append(int(table[i, j]))
    nodes = list(classes) + [f"cluster {int(c)}" for c in cluster_ids]
    return go.Sankey(node=dict(label=nodes, pad=12, thickness=14), link=dict(source=source, target=target, value=value))


def clustering_figures(result: ClusteringResult) -> dict[str, Any]:
    """Every clustering figure of the report, keyed by a stable id."""
    labels_view = result.labels[result.view_index]
    cluster_names = [f"cluster {i}" for i in range(max(result.pca.elbow_k, result.umap.elbow_k,
                                                        len(result.classes)) + 1)]
    k = len(result.classes)
    return {
        "pca-variance": pca_variance_figure(result.pca_cumulative_variance, variance=result.settings.variance,
                                            kept=result.pca.dimensions),
        "elbow-pca": elbow_figure(result.pca),
        "elbow-umap": elbow_figure(result.umap),
        "tsne-labels": scatter_figure(result.tsne_2d, labels_view, result.classes,
                                      title="t-SNE of the PCA projection, coloured by true label"),
        "tsne-clusters": scatter_figure(result.tsne_2d, result.pca.labels_true_k[result.view_index], cluster_names,
                                        title=f"t-SNE, coloured by the PCA pipeline's clusters (k = {k})"),
        "umap-labels": scatter_figure(result.umap_2d, labels_view, result.classes,
                                      title="UMAP in 2-D, coloured by true label"),
        "umap-clusters": scatter_figure(result.umap_2d, result.umap.labels_true_k[result.view_index], cluster_names,
                                        title=f"UMAP in 2-D, coloured by the UMAP pipeline's clusters (k = {k})"),
        **({"sankey-pca": level_sankey_figure(result, "pca", title="Each level's classes to PCA-pipeline clusters"),
            "sankey-umap": level_sankey_figure(result, "umap", title="Each level's classes to UMAP-pipeline clusters")}
           if result.levels else
           {"sankey-pca": sankey_figure(result.labels, result.pca.labels_true_k, result.classes,
                                        title=f"True labels to PCA-pipeline clusters (k = {k})"),
            "sankey-umap": sankey_figure(result.labels, result.umap.labels_true_k, result.classes,
                                         title=f"True labels to UMAP-pipeline clusters (k = {k})")}),
    }


def study_figures(study: optuna.Study) -> dict[str, Any]:
    """Optuna's own figures of the study; one that cannot be drawn yet (too few trials) is left out."""
    import optuna.visualization as vis

    figures = {}
    for key, draw in (("history", vis.plot_optimization_history), ("importances", vis.plot_param_importances),
                      ("parallel", vis.plot_parallel_coordinate)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "few trials per regime" notes on small studies
                fig = draw(study)
        except Exception as exc:  # Optuna refuses some plots on tiny studies
            log.info("study figure %s left out: %s", key, exc)
            continue
        fig.update_layout(**_LAYOUT)
        figures[key] = fig
    return figures
