"""One recipe trained and scored, knowing no engine: the study's data and feature cache, the two training
phases, checkpoints, the reporter an engine hands in, and the metrics."""

from ._checkpoint import Checkpoints, Saved, discard
from ._metrics import DECODERS, OBJECTIVES, check_objective, classification_metrics, objective_direction, \
    taxonomy_metrics
from ._reporter import NullReporter, Reporter, TrialStopped
from ._study_data import StudyData, study_data
from ._trial import DIVERGED_SHARE, TrialResult, fine_tuning_diverged, head_trainers, run_trial

__all__ = [
    "Checkpoints",
    "DECODERS",
    "DIVERGED_SHARE",
    "NullReporter",
    "OBJECTIVES",
    "Reporter",
    "Saved",
    "StudyData",
    "TrialResult",
    "check_objective",
    "taxonomy_metrics",
    "TrialStopped",
    "classification_metrics",
    "discard",
    "fine_tuning_diverged",
    "head_trainers",
    "objective_direction",
    "run_trial",
    "study_data",
]
