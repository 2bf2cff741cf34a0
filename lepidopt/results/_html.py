"""The report page: one self-contained HTML file, plotly.js inline, that opens offline."""

from __future__ import annotations

import datetime
import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["render_report", "SECTIONS"]

SECTIONS = {
    "summary": "Study summary",
    "test": "Test metrics of the best model",
    "pca": "PCA: explained variance",
    "elbow": "Choosing k: elbow curves",
    "views": "2-D views",
    "agreement": "Agreement with the true labels",
    "sankey": "From labels to clusters",
    "verdict": "Verdict",
}

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:24px 40px}header h1{margin:0 0 6px}header p{margin:0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #dde;padding:10px 40px;position:sticky;top:0;z-index:5}
nav a{margin-right:18px;color:#1d3557;text-decoration:none;font-size:14px}
main{padding:10px 40px 60px;max-width:1400px}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:18px 24px;margin:22px 0}
h2{margin-top:0;color:#1d3557}.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
table{border-collapse:collapse;font-size:14px;margin:8px 0}th,td{border-bottom:1px solid #e2e5ea;padding:5px 12px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f0f3f7}.better{font-weight:700;color:#1b7f3b}
.verdict{font-size:18px;line-height:1.5;background:#eef6ee;border-left:6px solid #1b7f3b;padding:12px 18px}
.note{color:#5a6472;font-size:13px}
"""


def _figure_html(fig: go.Figure, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _table(header: list[str], rows: list[list[Any]], *, highlight: list[int] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    for r, row in enumerate(rows):
        cells = []
        for c, value in enumerate(row):
            text = f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))
            cls = ' class="better"' if highlight and highlight[r] == c else ""
            cells.append(f"<td{cls}>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def _agreement_table(clustering: dict[str, Any]) -> str:
    names = ["ari", "nmi", "homogeneity", "completeness", "v_measure", "fowlkes_mallows", "purity", "silhouette"]
    pretty = {"ari": "adjusted Rand index", "nmi": "normalised mutual information", "v_measure": "V-measure",
              "fowlkes_mallows": "Fowlkes-Mallows", "silhouette": "silhouette (in the clustered space)"}
    rows, best = [], []
    for name in names:
        p_e, u_e = clustering["pca"]["scores_at_elbow_k"][name], clustering["umap"]["scores_at_elbow_k"][name]
        p_t, u_t = clustering["pca"]["scores_at_true_k"][name], clustering["umap"]["scores_at_true_k"][name]
        rows.append([pretty.get(name, name), p_t, u_t, p_e, u_e])
        best.append(1 if p_t > u_t else 2 if u_t > p_t else -1)
    header = ["metric", f"PCA, k = {len(clustering['classes'])}", f"UMAP, k = {len(clustering['classes'])}",
              f"PCA, elbow k = {clustering['pca']['elbow_k']}", f"UMAP, elbow k = {clustering['umap']['elbow_k']}"]
    return _table(header, rows, highlight=best)


def _level_agreement_table(clustering: dict[str, Any]) -> str:
    rows, best = [], []
    for name, level in clustering["levels"].items():
        k, e = level["at_level_k"], level["at_elbow_k"]
        rows.append([name, level["k"], k["pca"]["ari"], k["umap"]["ari"], k["pca"]["nmi"], k["umap"]["nmi"],
                     e["pca"]["ari"], e["umap"]["ari"]])
        best.append(2 if k["pca"]["ari"] > k["umap"]["ari"] else 3 if k["umap"]["ari"] > k["pca"]["ari"] else -1)
    header = ["level", "k = its classes", "PCA ARI", "UMAP ARI", "PCA NMI", "UMAP NMI",
              f"PCA ARI, elbow k = {clustering['pca']['elbow_k']}", f"UMAP ARI, elbow k = {clustering['umap']['elbow_k']}"]
    return _table(header, rows, highlight=best)


def _taxonomy_test(t: dict[str, Any], how: str, fig: dict[str, str]) -> str:
    rows = [[name, m["accuracy"], m["balanced_accuracy"], m["macro_f1"], m["weighted_f1"], m["n_images"]]
            for name, m in t["levels"].items()]
    tree = t["tree"]
    depth = len(t["levels"])
    coarsest = next(iter(t["levels"]))
    return f"""
<p>{t['n_images']} held-out test images, predictions decoded {'as the most probable paths of the tree' if
t['decode'] == 'consistent' else 'level by level'}. {html.escape(how)}</p>
{_table(['level', 'accuracy', 'balanced accuracy', 'macro F1', 'weighted F1', 'images placed'], rows)}
<p>Predictions that are paths of the tree: <b>{tree['consistent_share']:.1%}</b>. Mistake severity (the height of
the lowest common ancestor of the predicted and true path, over the mistakes: 1 is a wrong class under the right
parent, {depth} a wrong {html.escape(coarsest)}): <b>{tree['mistake_severity']:.2f}</b>; averaged over every
prediction, 0 for a right one: <b>{tree['hierarchical_distance']:.2f}</b>.</p>
{fig.get('sunburst', '')}<p class="note">The confusion matrix below is the {html.escape(coarsest)} level's.</p>
{fig.get('confusion', '')}"""


def render_report(*, title: str, subtitle: str, figures: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The whole page. ``figures`` maps stable ids to plotly figures; ``metrics`` is report/metrics.json."""
    from plotly.offline import get_plotlyjs

    fig = {key: _figure_html(f, key) for key, f in figures.items()}
    present = [k for k in SECTIONS if k not in ("summary", "test") or k in metrics]
    parts = []
    if "summary" in metrics:
        s = metrics["summary"]
        params = _table(["parameter", "value"], [[k, v] for k, v in s["best_params"].items()])
        studies = "".join(fig.get(k, "") for k in ("history", "importances", "parallel"))
        missing = [k for k in ("history", "importances", "parallel") if k not in fig]
        parts.append(_section("summary", f"""
<p>{s['n_trials']} trials ({s['n_complete']} complete, {s['n_pruned']} pruned, {s['n_failed']} failed); objective
<b>{html.escape(s['objective'])}</b> ({s['direction']}). Best trial <b>#{s['best_trial']}</b>, value
<b>{s['best_value']:.4f}</b>.</p>{params}{studies}
{f'<p class="note">Not drawn yet ({", ".join(missing)}): too few trials.</p>' if missing else ''}"""))
    if "test" in metrics and "levels" in metrics["test"]:
        parts.append(_section("test", _taxonomy_test(metrics["test"], metrics.get("export", {}).get("how", ""), fig)))
    elif "test" in metrics:
        t = metrics["test"]
        overall = [[k.replace("_", " "), t[k]] for k in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1",
                                                        "top_3_accuracy", "top_5_accuracy") if k in t]
        per_class = [[r["class"], r["precision"], r["recall"], r["f1"], r["support"]] for r in t["per_class"]]
        retrained = metrics.get("export", {})
        parts.append(_section("test", f"""
<p>{t['n_images']} held-out test images. {html.escape(retrained.get('how', ''))}</p>
<div class="grid"><div>{_table(['metric', 'value'], overall)}</div>
<div>{_table(['class', 'precision', 'recall', 'F1', 'support'], per_class)}</div></div>{fig.get('confusion', '')}"""))
    c = metrics["clustering"]
    parts.append(_section("pca", f"""
<p>{c['n_points']} embeddings of {c['n_features']} dimensions, standardised, then PCA keeping
{c['settings']['variance']:.0%} of the variance: <b>{c['pca_components_kept']} components</b>.</p>{fig['pca-variance']}"""))
    parts.append(_section("elbow", f"""<p>KMeans inertia for k in [{c['pca']['k_values'][0]}, {c['pca']['k_values'][-1]}];
the knee of each curve (kneed) is the pipeline's k.</p><div class="grid">{fig['elbow-pca']}{fig['elbow-umap']}</div>"""))
    shown = (f"All {c['n_points']} points." if c["view_points"] == c["n_points"]
             else f"{c['view_points']} of the {c['n_points']} points, drawn at random.")
    parts.append(_section("views", f"""<p>{shown}</p>
<div class="grid">{fig['tsne-labels']}{fig['tsne-clusters']}{fig['umap-labels']}{fig['umap-clusters']}</div>"""))
    parts.append(_section("agreement", f"""<p>Each pipeline's clusters against the true labels, at k = number
of classes (equal terms) and at the pipeline's own elbow k; the better of the two at equal k is in green.</p>
{_agreement_table(c)}{_levels_agreement(c)}"""))
    parts.append(_section("sankey", f"""<div class="grid">{fig['sankey-pca']}{fig['sankey-umap']}</div>"""))
    parts.append(_section("verdict", f"""<p class="verdict">{html.escape(c['verdict'])}</p>"""))
    nav = "".join(f'<a href="#{k}">{SECTIONS[k]}</a>' for k in present)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)} &middot; written {stamp} by lepidopt</p></header>
<nav>{nav}</nav><main>{''.join(parts)}</main></body></html>"""


def _levels_agreement(clustering: dict[str, Any]) -> str:
    if "levels" not in clustering:
        return ""
    return f"""<p>Against every level of the taxonomy: each pipeline clustered at k = the level's classes, and its
own elbow-k clusters, scored on the points placed at that level.</p>{_level_agreement_table(clustering)}"""


def _section(key: str, body: str) -> str:
    return f'<section id="{key}"><h2>{SECTIONS[key]}</h2>{body}</section>'
