"""The Optuna study as lepidopt's record: storage URLs, creating a study (all of it or none) and opening it
again from any folder, every key it records (``attrs``), which trials count towards its total, and its
status."""

from . import _attrs as attrs
from ._counting import count_claimed, count_finished
from ._creation import create_study, creation_lock, resume_study
from ._experimental import quietly
from ._grpc import serve_proxy
from ._opening import OpenedStudy, existing_storage, open_study
from ._patience import StorageUnavailable, StorageUnreachable, outage_error, unreachable_in, without_waiting
from ._record import load_study, record_study, update_record
from ._retry import retry_trial
from ._status import StudyStatus, TrialRow, format_status, status_of
from ._storage import Heartbeat, check_storage_url, has_optuna_tables, open_storage, study_names

__all__ = [
    "Heartbeat",
    "OpenedStudy",
    "StorageUnavailable",
    "StorageUnreachable",
    "StudyStatus",
    "TrialRow",
    "attrs",
    "check_storage_url",
    "count_claimed",
    "count_finished",
    "create_study",
    "creation_lock",
    "existing_storage",
    "format_status",
    "has_optuna_tables",
    "load_study",
    "open_storage",
    "open_study",
    "outage_error",
    "quietly",
    "record_study",
    "resume_study",
    "retry_trial",
    "serve_proxy",
    "status_of",
    "study_names",
    "unreachable_in",
    "update_record",
    "without_waiting",
]
