"""Running a study's trials in a worker: the process behind ``lepidopt search`` and ``lepidopt worker``.

A worker joins a study on a storage and reads everything else (data, space, settings, the folder of
the split and the feature cache) from the study itself. Many workers on many machines share one
study through PostgreSQL or MySQL (or SQLite on one machine); each trial records the host and pid
that ran it. SIGTERM or SIGINT stops a worker within moments: its trial is failed with the reason
and enqueued again, to resume from its last checkpoint, and the worker exits with 128 + the signal
number (143 for SIGTERM, 130 for SIGINT).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from pathlib import Path

from ..errors import SettingError, StudyError, WorkerInterrupted
from ..runs import Run
from ._experimental import quietly
from ._keras_tuner_engine import keras_tuner_search
from ._opening import open_study
from ._optuna_engine import TOTAL_ATTR, TrialPolicy, count_finished, load_for_trials, optimize
from ._processes import Recycling, optimize_in_processes
from ._signals import Interrupted, stopping_on_signals
from ._storage import Heartbeat
from ._study_data import StudyData, study_data

__all__ = ["run_trials", "recycling", "check_limits", "worker", "recover", "KerasTunerRole", "WorkerSummary", "RecoverSummary"]

log = logging.getLogger("lepidopt")


def run_trials(run: Run, study, *, n_trials: int | None, timeout: float | None, recycling: Recycling,
               policy: TrialPolicy, heartbeat: Heartbeat, data: StudyData | None = None, on_trial=None) -> None:
    """Trials of ``study`` in this process (or in recycled child processes) until its total or the timeout;
    raises WorkerInterrupted after a SIGTERM or SIGINT, with the interrupted trial enqueued again. ``data``:
    the study's data if this process has it already (else it is built from the run)."""
    with stopping_on_signals():
        try:
            if run.engine == "keras-tuner":
                keras_tuner_search(run, study, data or study_data(run), n_trials=n_trials, timeout=timeout,
                                   policy=policy)
            elif recycling.enabled:
                optimize_in_processes(run, n_trials=n_trials, timeout=timeout, recycling=recycling, policy=policy,
                                      heartbeat=heartbeat,
                                      finished=lambda: n_trials is not None and count_finished(study) >= n_trials)
            else:
                optimize(run, study, data or study_data(run), n_trials=n_trials, timeout=timeout, policy=policy,
                         on_trial=on_trial)
        except Interrupted as stop:
            number = getattr(stop, "trial_number", None)
            if number is not None:
                retry_interrupted(study, number, retries=heartbeat.retries)
            retried = f"trial {number} will be retried from its last checkpoint; " if number is not None else \
                "Keras Tuner runs its trial again, from its last checkpoint; " if run.engine == "keras-tuner" else ""
            raise WorkerInterrupted(f"interrupted by {stop}: {retried}run the same command again to go on.",
                                    signal_number=stop.signal_number) from None


def recycling(run: Run, *, max_trials_per_process: int | None, max_rss: str | int | None) -> Recycling:
    """When this process's trials move to fresh worker processes; sizes read as '6GB'."""
    from .._sizes import parse_size

    recycled = Recycling(max_trials=max_trials_per_process,
                         max_rss=None if max_rss is None else parse_size(max_rss, setting="max_rss"))
    if recycled.enabled and run.engine != "optuna":
        raise SettingError("max_trials_per_process" if max_trials_per_process is not None else "max_rss",
                           max_trials_per_process if max_trials_per_process is not None else max_rss,
                           f"recycles Optuna workers; with engine {run.engine} one process runs the whole search. "
                           "Drop it, or run a study with --engine optuna.")
    return recycled


def retry_interrupted(study, number: int, *, retries: int) -> None:
    """Enqueue trial ``number`` again with its parameters, as the heartbeat does for a dead worker's trial."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    quietly(RetryHeartbeatStaleTrialCallback, max_retry=retries)(study, frozen)


@dataclasses.dataclass(frozen=True)
class KerasTunerRole:
    """A process's place in a distributed Keras Tuner search, as Keras Tuner reads it from its environment."""

    tuner_id: str | None
    oracle_ip: str | None
    oracle_port: int | None

    _ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")

    @classmethod
    def from_flags(cls, *, tuner_id: str | None = None, oracle_ip: str | None = None,
                   oracle_port: int | None = None) -> "KerasTunerRole":
        """The role the flags give, each one missing read from its KERASTUNER_* environment variable."""
        env_id, env_ip, env_port = (os.environ.get(name) for name in cls._ENV)
        return cls(tuner_id=tuner_id or env_id, oracle_ip=oracle_ip or env_ip,
                   oracle_port=oracle_port or (int(env_port) if env_port and env_port.isdigit() else None))

    def export(self) -> None:
        """Check the role and put it where Keras Tuner reads it."""
        missing = [flag for flag, value in (("--tuner-id", self.tuner_id), ("--oracle-ip", self.oracle_ip),
                                            ("--oracle-port", self.oracle_port)) if not value]
        if missing:
            raise StudyError(
                f"Keras Tuner worker: needs {', '.join(missing)} (or {', '.join(self._ENV)}): one worker with "
                "--tuner-id chief serves the oracle at --oracle-ip:--oracle-port, the others (--tuner-id tuner0, "
                "tuner1, ...) run its trials. To run a Keras Tuner study in one process, use lepidopt search.")
        if not 0 < self.oracle_port < 65536:
            raise SettingError("oracle_port", self.oracle_port, "must be a TCP port, 1 to 65535.")
        os.environ.update(dict(zip(self._ENV, (self.tuner_id, self.oracle_ip, str(self.oracle_port)))))


@dataclasses.dataclass(frozen=True)
class WorkerSummary:
    run: Run
    ran: int  # trials this worker finished
    finished: int  # the study's finished trials afterwards
    seconds: float


def worker(*, study: str, storage: str | None = None, results_dir: str | Path | None = None,
           n_trials: int | None = None, timeout: float | None = None, heartbeat: Heartbeat = Heartbeat(),
           policy: TrialPolicy = TrialPolicy(), max_trials_per_process: int | None = None,
           max_rss: str | int | None = None, engine: str | None = None,
           keras_tuner: KerasTunerRole | None = None) -> WorkerSummary:
    """Join an existing study and run its trials until its total (recorded when it was created, or
    ``n_trials``) or ``timeout``. ``storage``: the study's storage URL (default: the one in
    ``results_dir/study/run.yaml``). ``results_dir``: where the study's folder is mounted on this machine, if
    not where it was created. ``engine``, when given, must be the study's. The data, space and every setting
    that defines how trials train are the study's own.

    A study whose engine is Keras Tuner runs distributed the Keras Tuner way: one worker with tuner id
    'chief' serves the oracle, the others (tuner ids tuner0, tuner1, ...) ask it for trials; ``keras_tuner``
    gives this worker's role, else it is read from KERASTUNER_TUNER_ID, _ORACLE_IP and _ORACLE_PORT."""

    started = time.perf_counter()
    check_limits(n_trials=n_trials, timeout=timeout)
    opened = open_study(study=study, storage=storage, results_dir=results_dir, heartbeat=heartbeat)
    run = opened.run
    if engine is not None and engine != run.engine:
        raise StudyError(f"study {study!r}: its engine is {run.engine}, not {engine}; drop --engine or give "
                         f"--engine {run.engine}.")
    if run.engine == "keras-tuner":
        (keras_tuner or KerasTunerRole.from_flags()).export()
    elif keras_tuner is not None:
        raise StudyError(f"study {study!r}: its engine is {run.engine}; --tuner-id, --oracle-ip and --oracle-port "
                         "are for Keras Tuner studies. Drop them.")
    if not (run.folder / "split.json").exists():
        raise StudyError(
            f"study {study!r}: its folder {str(run.folder)!r} has no split.json. Workers need the study's folder "
            "(split, feature cache, checkpoints) on a filesystem every machine shares; pass --results-dir with the "
            "folder's parent as mounted here.")
    processes = recycling(run, max_trials_per_process=max_trials_per_process, max_rss=max_rss)
    data = study_data(run)  # checked here, before any trial process starts
    optuna_study = load_for_trials(run, opened.storage)
    total = n_trials if n_trials is not None else optuna_study.user_attrs.get(TOTAL_ATTR)
    before = count_finished(optuna_study)
    log.info("worker %s:%d joins study %r: %d finished trials, running until %s", socket.gethostname(), os.getpid(),
             study, before, f"{total} in total" if total else "stopped")
    run_trials(run, optuna_study, n_trials=total, timeout=timeout, data=None if processes.enabled else data,
               recycling=processes, policy=policy, heartbeat=heartbeat)
    mine = [t for t in optuna_study.get_trials(deepcopy=False)
            if t.user_attrs.get("worker", {}).get("pid") == os.getpid() and t.state.is_finished()]
    return WorkerSummary(run=run, ran=len(mine), finished=count_finished(optuna_study),
                         seconds=time.perf_counter() - started)


def check_limits(*, n_trials: int | None, timeout: float | None) -> None:
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise SettingError("n_trials", n_trials, "must be a whole number of at least 1 (the study's total of finished "
                           "trials).")
    if timeout is not None and not timeout > 0:
        raise SettingError("timeout", timeout, "must be a positive number of seconds.")


@dataclasses.dataclass(frozen=True)
class RecoverSummary:
    retried: tuple[int, ...]  # trials failed and enqueued again
    left: tuple[int, ...]  # running trials left alone: their worker is alive on this machine


def recover(*, study: str, storage: str | None = None, results_dir: str | Path | None = None, retries: int = 3,
            force: bool = False) -> RecoverSummary:
    """The manual step for storages without a heartbeat (journal files), after a worker died: fail the
    study's running trials and enqueue each again, to resume from its checkpoint. A trial whose worker
    is still alive on this machine is left alone; trials of other machines are recovered only with
    ``force`` (make sure no worker runs there). ``storage`` defaults to the one in the study's run.yaml."""
    import optuna

    if retries < 0:
        raise SettingError("retries", retries, "must be 0 or more.")
    optuna_study = open_study(study=study, storage=storage, results_dir=results_dir).study
    here = socket.gethostname()
    retried, left = [], []
    for trial in optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = trial.user_attrs.get("worker", {})
        alive = owner.get("host") == here and _alive(owner.get("pid"))
        elsewhere = owner.get("host") not in (None, here)
        if alive or (elsewhere and not force):
            left.append(trial.number)
            continue
        optuna_study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        retry_interrupted(optuna_study, trial.number, retries=retries)
        retried.append(trial.number)
    return RecoverSummary(retried=tuple(retried), left=tuple(left))


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
