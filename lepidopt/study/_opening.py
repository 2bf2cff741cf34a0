"""Opening a study that exists, from any folder: its storage must hold it, and nothing is created when it
does not. Every command that works on an existing study (a resumed search, worker, recover, status,
export, report, dashboard) comes through here."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import StorageError, StudyError, command, option
from ..runs import Run, absolute_storage, mask_password, read_run, run_from_dict, storage_file, study_dir
from . import _attrs as attrs
from ._patience import patiently
from ._storage import Heartbeat, has_optuna_tables, open_storage, study_names

if TYPE_CHECKING:
    import optuna

__all__ = ["existing_storage", "open_study", "OpenedStudy"]


_FIX = (f"Check {option('study')} and {option('storage')}, or create the study with "
        f"{command('search', 'data', 'space')}.")


def existing_storage(url: str, study: str, *, heartbeat: Heartbeat | None = None,
                     fix: str = _FIX) -> optuna.storages.BaseStorage:
    """The opened storage at ``url``, which holds ``study``; a storage that does not hold it is left as it was and
    the error lists the studies it does hold, then says ``fix``."""
    shown = mask_password(url)
    path = storage_file(url)
    if path is not None and not path.is_file():
        raise StorageError(
            f"storage {shown!r}", f"the file {str(path)!r} does not exist, so it holds no study {study!r}; nothing "
            "was created.", fix=f"A relative path is read from the current folder, {os.getcwd()}. {fix}"
        )

    def opened() -> tuple[optuna.storages.BaseStorage | None, list[str]]:
        storage = open_storage(url, heartbeat=heartbeat, create=False) if has_optuna_tables(url) else None
        return storage, [] if storage is None else study_names(storage)

    # A worker (with a heartbeat) that starts while its database restarts waits for it, as a running one does.
    storage, names = (patiently(opened, url=url, outage=cast(float, heartbeat.outage))
                      if heartbeat is not None and path is None else opened())  # a file: no wait mends it
    if study not in names:
        raise StudyError(f"study {study!r}", f"not in storage {shown!r}, which holds "
                         f"{', '.join(map(repr, names)) or 'no study'}; nothing was created.", fix=fix)
    return cast("optuna.storages.BaseStorage", storage)  # not None here: None holds no study


@dataclasses.dataclass(frozen=True)
class OpenedStudy:
    run: Run  # as the study records it, with the study's folder on this machine
    study: Any  # optuna.Study
    storage: Any  # the opened Optuna storage


def open_study(*, study: str, storage: str | None = None, results_dir: str | Path | None = None,
               heartbeat: Heartbeat | None = None) -> OpenedStudy:
    """An existing study, its run as the study records it, and its opened storage.

    The storage is ``storage`` if given, else the one in ``results_dir/study/run.yaml`` (``results_dir``
    defaults to ``results``). The study's folder is in ``results_dir`` if given or if its run.yaml was found
    there, else where the study was created."""
    folder = study_dir(results_dir if results_dir is not None else "results", study)
    saved_here = read_run(folder)
    if storage is None:
        if saved_here is None:
            raise StudyError(
                f"study {study!r}", f"no run.yaml in {str(folder)!r}.",
                fix=f"Check {option('study')} and {option('results_dir')}, or pass {option('storage')} with the "
                    "study's storage URL."
            )
        storage = saved_here["storage"]
        if "***" in storage:
            raise StudyError(f"study {study!r}", "its storage URL holds a password, which run.yaml does not keep; "
                             f"pass {option('storage')} with the full URL.")
    import optuna

    url = absolute_storage(storage)
    opened = existing_storage(url, study, heartbeat=heartbeat)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = optuna.load_study(study_name=study, storage=opened)
    record = loaded.user_attrs.get(attrs.RUN)
    if record is None:
        raise StudyError(f"study {study!r}", f"was not made by lepidopt (it has no {attrs.RUN!r} record), so "
                         "lepidopt does not know its data and space.",
                         fix="Create studies with lepidopt search; open this one with optuna-dashboard directly.")
    where = results_dir if results_dir is not None else folder.parent if saved_here is not None else \
        record["results_dir"]
    return OpenedStudy(run=run_from_dict(record, storage=url, results_dir=where), study=loaded, storage=opened)
