"""One recipe trained and scored, knowing no engine: the study's data and feature cache, the two training
phases, checkpoints, the reporter an engine hands in, and the metrics."""

from ._checkpoint import Checkpoints, Saved, discard
from ._metrics import OBJECTIVES, classification_metrics, objective_direction
from ._reporter import NullReporter, Reporter, TrialStopped
from ._study_data import StudyData, study_data
from ._trial import DIVERGED_SHARE, TrialResult, fine_tuning_diverged, head_trainers, run_trial

__all__ = [
    "Checkpoints",
    "DIVERGED_SHARE",
    "NullReporter",
    "OBJECTIVES",
    "Reporter",
    "Saved",
    "StudyData",
    "TrialResult",
    "TrialStopped",
    "classification_metrics",
    "discard",
    "fine_tuning_diverged",
    "head_trainers",
    "objective_direction",
    "run_trial",
    "study_data",
]
