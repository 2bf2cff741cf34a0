"""Best-model export and evaluation, embeddings, clustering (PCA against UMAP), figures, the HTML report
and review in optuna-dashboard."""

from ._best import BestTrial, load_best
from ._clustering import (ClusteringResult, ClusteringSettings, PipelineResult, agreement, check_embeddings,
                          cluster_embeddings, elbow, purity)
from ._export import ExportResult, export_best
from ._labels import load_labels
from ._report import EMBEDDINGS_KEYS, ReportResult, report_embeddings, report_study
from ._serve import serve_dashboard

__all__ = [
    "EMBEDDINGS_KEYS",
    "BestTrial",
    "ClusteringResult",
    "ClusteringSettings",
    "ExportResult",
    "PipelineResult",
    "ReportResult",
    "agreement",
    "check_embeddings",
    "cluster_embeddings",
    "elbow",
    "export_best",
    "load_best",
    "load_labels",
    "purity",
    "report_embeddings",
    "report_study",
    "serve_dashboard",
]
