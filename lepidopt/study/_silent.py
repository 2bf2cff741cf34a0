"""Running trials that never wrote a heartbeat, and how the stale-trial sweep comes to judge them.

Such a trial's worker died between taking it and its first heartbeat, or lost the answer of the call that
took it while the storage was unreachable (the call was stored; its retry took another trial). Optuna's sweep
judges only trials with a heartbeat, so the trial would hold a place in the study's total for ever. The
sweeping worker writes a first heartbeat for it instead: a live worker overwrites it with its own, and a dead
one's trial is stale one grace period later, judged by the same clock as every other trial.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["sweeping_rdb_storage"]


@functools.cache
def sweeping_rdb_storage() -> type:
    """Optuna's RDBStorage whose stale-trial sweep also starts the clock of silent trials (made on first use:
    Optuna is imported only by the processes that open a storage)."""
    import optuna
    import sqlalchemy
    from optuna.storages._rdb import models

    class SweepingRDBStorage(optuna.storages.RDBStorage):
        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            stale: list[int] = super()._get_stale_trial_ids(study_id)
            for trial_id in silent_trial_ids(self, study_id):
                self.record_heartbeat(trial_id)  # two sweepers at once: Optuna ignores the second row's conflict
            return stale

    def silent_trial_ids(storage: Any, study_id: int) -> list[int]:
        trial, beat = models.TrialModel, models.TrialHeartbeatModel
        query = (sqlalchemy.select(trial.trial_id).outerjoin(beat, beat.trial_id == trial.trial_id)
                 .where(trial.study_id == study_id, trial.state == optuna.trial.TrialState.RUNNING,
                        beat.trial_heartbeat_id.is_(None)))
        with storage.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    return SweepingRDBStorage
