"""Review in optuna-dashboard: figures and a note attached to the study, files as Optuna artifacts."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MissingExtraError
from ..study import attrs

if TYPE_CHECKING:
    import optuna

__all__ = ["attach_to_study", "DASHBOARD_FIGURES", "artifact_dir"]

log = logging.getLogger("lepidopt")
DASHBOARD_FIGURES = ("confusion", "pca-variance", "elbow-pca", "elbow-umap", "umap-labels", "tsne-labels",
                     "sankey-pca", "sankey-umap")

_UPLOADED = attrs.ARTIFACTS


def artifact_dir(folder: Path) -> Path:
    return folder / "artifacts"


def attach_to_study(study: optuna.Study, *, figures: dict[str, Any], note: str, files: list[Path],
                    folder: Path) -> list[str]:
    """Save the main figures (stable ids, so a new report replaces the old) and a Markdown note on the
    study, and upload ``files`` as artifacts of the study (a finished trial takes no new attributes).
    Returns the artifact ids."""
    try:
        from optuna_dashboard import save_note, save_plotly_graph_object
    except ImportError:
        raise MissingExtraError("optuna-dashboard", "is not installed; pip install 'lepidopt[dashboard]'.") from None
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    for key in DASHBOARD_FIGURES:
        if key in figures:
            save_plotly_graph_object(study, figures[key], graph_object_id=f"lepidopt-{key}")
    save_note(study, note)
    store_path = artifact_dir(folder)
    store_path.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(store_path))
    uploaded = dict(study.user_attrs.get(_UPLOADED, {}))
    ids = []
    for path in (f for f in files if f.exists()):
        digest = _sha256(path)
        known = uploaded.get(path.name)
        if known and known["sha256"] == digest:  # the same file again: a new copy would only waste space
            ids.append(known["id"])
            continue
        artifact_id = upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)
        uploaded[path.name] = {"id": artifact_id, "sha256": digest}
        ids.append(artifact_id)
    study.set_user_attr(_UPLOADED, uploaded)
    log.info("attached %d figures, a note and %d artifacts to study %r", len(DASHBOARD_FIGURES), len(ids),
             study.study_name)
    return ids


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
