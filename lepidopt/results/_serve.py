"""``lepidopt dashboard``: optuna-dashboard on the study's storage and artifact folder."""

from __future__ import annotations

from pathlib import Path

from .._numbers import whole_number
from ..errors import MissingExtraError, SettingError
from ._dashboard import artifact_dir

__all__ = ["serve_dashboard"]


def serve_dashboard(*, study: str, storage: str | None = None, results_dir: str | Path | None = None,
                    host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the study in optuna-dashboard until interrupted; prints the address first.

    Args:
        study: The study's name.
        storage: The study's storage URL; default: the one in its run.yaml.
        results_dir: Where the study's folder is, if not where it was created.
        host: The address to listen on.
        port: The TCP port to listen on.

    Raises:
        SettingError: A port outside 1 to 65535.
        MissingExtraError: optuna-dashboard is not installed.
        StudyError: The storage does not hold the study.
    """
    if not (whole_number(port, at_least=1) and port < 65536):
        raise SettingError("port", port, "must be a TCP port, 1 to 65535.")
    try:
        from optuna.artifacts import FileSystemArtifactStore
        from optuna_dashboard import run_server
    except ImportError:
        raise MissingExtraError("optuna-dashboard", "is not installed; pip install 'lepidopt[dashboard]'.") from None
    from ..study import open_study

    opened = open_study(study=study, storage=storage, results_dir=results_dir)
    artifacts = artifact_dir(opened.run.folder)
    artifacts.mkdir(parents=True, exist_ok=True)
    print(f"optuna-dashboard for study {study!r}: http://{host}:{port}/  (Ctrl-C stops it)", flush=True)
    run_server(opened.storage, host=host, port=port, artifact_store=FileSystemArtifactStore(str(artifacts)))
