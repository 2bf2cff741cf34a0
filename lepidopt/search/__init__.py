"""The trial runner, the Optuna and Keras Tuner engines, storages, and the search and status functions."""

from ._api import OpenedStudy, SearchSummary, StudyStatus, format_status, open_study, search, status
from ._creation import create_study
from ._metrics import OBJECTIVES, classification_metrics
from ._reporter import NullReporter, Reporter, TrialStopped
from ._optuna_engine import TrialPolicy
from ._storage import Heartbeat, open_storage
from ._study_data import StudyData, study_data
from ._trial import TrialResult, run_trial
from ._workers import KerasTunerRole, RecoverSummary, WorkerSummary, recover, worker

__all__ = [
    "Heartbeat",
    "KerasTunerRole",
    "RecoverSummary",
    "TrialPolicy",
    "WorkerSummary",
    "NullReporter",
    "OpenedStudy",
    "OBJECTIVES",
    "Reporter",
    "SearchSummary",
    "StudyData",
    "StudyStatus",
    "TrialResult",
    "TrialStopped",
    "classification_metrics",
    "create_study",
    "format_status",
    "open_storage",
    "open_study",
    "recover",
    "run_trial",
    "search",
    "status",
    "study_data",
    "worker",
]
