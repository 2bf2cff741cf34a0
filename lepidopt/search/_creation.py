"""Creating a study and opening it again: all of a creation is made or none of it.

A creation scans the data, freezes the split bound to it, creates the study in its storage and writes
run.yaml last. When any step fails or is interrupted, what the creation made is removed again (the
study's folder or the files it wrote there, a storage file it created, the study in a storage that
already held others), so a later creation under the same name starts clean.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path
from typing import Iterator

from ..data import make_split, scan_source, write_split
from ..errors import StudyError
from ..runs import Run, mask_password, storage_file, write_run
from ._opening import existing_storage
from ._optuna_engine import RUN_ATTR, TOTAL_ATTR, load_for_trials, record_study, update_record
from ._signals import stopping_on_signals
from ._storage import Heartbeat, open_storage, study_names
from ._study_data import study_data

__all__ = ["create_study", "resume_study"]

log = logging.getLogger("lepidopt")


def create_study(run: Run, *, heartbeat: Heartbeat | None = None, n_trials: int | None = None):
    """Create ``run``'s study (scan, split.json, the study in its storage, its total, run.yaml) and return it
    with the run's sampler and pruner. Raises StudyError, without making anything, when the storage holds a
    study of that name already."""
    path = storage_file(run.storage)
    opened = None
    if path is None or path.is_file():  # a server, or a file that holds other studies: look before the scan
        opened = open_storage(run.storage, heartbeat=heartbeat, create=path is None)
        _refuse_existing(run, opened)
    with stopping_on_signals(), _undone_on_failure(run, path) as made:
        scan = scan_source(run.data)
        split = make_split(scan, seed=run.seed, val_fraction=run.val_fraction, test_fraction=run.test_fraction,
                           data=run.data)
        run.folder.mkdir(parents=True, exist_ok=True)
        write_split(split, run.folder / "split.json")
        made.files.append(run.folder / "split.json")
        counts = split.counts()
        log.info("split %d images of %d classes: %d train, %d val, %d test (%d skipped, %d classes dropped) -> %s",
                 len(split.paths), len(split.classes), *(sum(counts[s].values()) for s in ("train", "val", "test")),
                 len(split.skipped), len(split.dropped_classes), run.folder / "split.json")
        opened = opened or open_storage(run.storage, heartbeat=heartbeat)
        made.storage = opened
        study = record_study(run, opened)
        if n_trials is not None:
            study.set_user_attr(TOTAL_ATTR, n_trials)
        write_run(run)
        made.files.append(run.folder / "run.yaml")
    return study


def resume_study(run: Run, *, heartbeat: Heartbeat | None = None, n_trials: int | None = None):
    """Open ``run``'s existing study (its storage must hold it: nothing is created otherwise), check its split
    against its data, record the run's settings (sampler, pruner, seed may change) and its total, and rewrite
    run.yaml. Returns the study with the run's sampler and pruner, and the study's data."""
    study = load_for_trials(run, existing_storage(run.storage, run.study, heartbeat=heartbeat))
    recorded = study.user_attrs.get(RUN_ATTR, {}).get("data")
    if recorded is not None and recorded != run.data.to_dict():
        raise StudyError(
            f"study {run.study!r}: storage {mask_password(run.storage)!r} holds a study of that name made from "
            f"{recorded.get('source')}, not from {run.data.source}, the data in {str(run.folder / 'run.yaml')!r}. "
            "Check --storage and --results-dir."
        )
    data = study_data(run)  # the split is still the one made from this data, and its images are unchanged
    update_record(study, run)
    if n_trials is not None:
        study.set_user_attr(TOTAL_ATTR, n_trials)
    write_run(run)
    return study, data


def _refuse_existing(run: Run, storage) -> None:
    if run.study not in study_names(storage):
        return
    import optuna

    record = optuna.load_study(study_name=run.study, storage=storage).user_attrs.get(RUN_ATTR) or {}
    where = record.get("results_dir")
    raise StudyError(
        f"study {run.study!r}: exists already in storage {mask_password(run.storage)!r}"
        f"{f', created with its folder in {where}' if where else ''}, and {str(run.folder)!r} holds no run.yaml of "
        f"it. To resume it, give --results-dir {where or 'DIR'} (where its folder is); to start a new study, choose "
        f"another --study; or delete it first (optuna delete-study --study-name {run.study} --storage URL)."
    )


class _Made:
    def __init__(self, run: Run, storage_path: Path | None) -> None:
        self.run = run
        self.storage_path = storage_path
        self.storage_existed = storage_path is not None and storage_path.exists()
        self.folder_existed = run.folder.exists()
        self.results_existed = run.results_dir.exists()
        self.files: list[Path] = []
        self.storage = None  # the opened storage, once the study may be in it

    def undo(self) -> None:
        for step in (self._delete_study, self._remove_storage_file, self._remove_files):
            try:
                step()
            except Exception as exc:  # the original error is what the user must see; this one is logged
                log.warning("could not undo part of the creation of study %r: %s", self.run.study, exc)

    def _delete_study(self) -> None:
        if self.storage is None or (self.storage_path is not None and not self.storage_existed):
            return  # a storage file made by this creation is removed whole
        import optuna

        if self.run.study in study_names(self.storage):
            optuna.delete_study(study_name=self.run.study, storage=self.storage)

    def _remove_storage_file(self) -> None:
        if self.storage_path is None or self.storage_existed:
            return
        if self.storage is not None and hasattr(self.storage, "engine"):
            self.storage.engine.dispose()
        for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
            Path(f"{self.storage_path}{suffix}").unlink(missing_ok=True)

    def _remove_files(self) -> None:
        if not self.folder_existed:
            shutil.rmtree(self.run.folder, ignore_errors=True)
            if not self.results_existed:
                with contextlib.suppress(OSError):
                    self.run.results_dir.rmdir()  # only when empty: another study may have started there meanwhile
            return
        for path in self.files:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def _undone_on_failure(run: Run, storage_path: Path | None) -> Iterator[_Made]:
    made = _Made(run, storage_path)
    try:
        yield made
    except BaseException:
        made.undo()
        raise
