"""The trial runner, the Optuna and Keras Tuner engines, storages, and the search and status functions."""

from ._api import SearchSummary, StudyStatus, format_status, open_study, prepare_split, search, status
from ._metrics import OBJECTIVES, classification_metrics
from ._reporter import NullReporter, Reporter, TrialStopped
from ._optuna_engine import TrialPolicy
from ._storage import Heartbeat, open_storage
from ._study_data import StudyData
from ._trial import TrialResult, run_trial
from ._workers import KerasTunerRole, RecoverSummary, WorkerSummary, recover, worker

__all__ = [
    "Heartbeat",
    "KerasTunerRole",
    "RecoverSummary",
    "TrialPolicy",
    "WorkerSummary",
    "NullReporter",
    "OBJECTIVES",
    "Reporter",
    "SearchSummary",
    "StudyData",
    "StudyStatus",
    "TrialResult",
    "TrialStopped",
    "classification_metrics",
    "format_status",
    "open_storage",
    "open_study",
    "prepare_split",
    "recover",
    "run_trial",
    "search",
    "status",
    "worker",
]
