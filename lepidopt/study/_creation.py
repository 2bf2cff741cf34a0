"""Creating a study and opening it again: all of a creation is made or none of it.

A creation claims the study's name in its storage first (storages create a name once, so two machines
cannot both create it), then scans the data, freezes the split bound to it and writes run.yaml last.
When any step fails or is interrupted, what this creation made is removed again (the folders it
created, the files it wrote, a storage file it created, the study it claimed in a storage that holds
others), and nothing another process made is touched: on one machine, creations and resumes of a
study folder take turns under a lock, so the same ``search`` started many times creates the study
once and resumes it in the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .._signals import stopping_on_signals
from ..data import make_split, scan_source, write_split
from ..errors import StudyError, option
from ..runs import Run, mask_password, storage_file, write_run
from ..trial import StudyData, study_data
from . import _attrs as attrs
from ._opening import existing_storage
from ._record import load_study, record_study, update_record
from ._storage import Heartbeat, open_storage, study_names

if TYPE_CHECKING:
    import optuna

__all__ = ["create_study", "resume_study", "creation_lock"]

log = logging.getLogger("lepidopt")


@contextlib.contextmanager
def creation_lock(folder: Path) -> Iterator[None]:
    """Held while a study folder is created or resumed, by the processes of this machine. The lock file lives in
    the system's temporary folder, so nothing is left in the results folder."""
    from filelock import FileLock

    name = hashlib.sha256(str(folder).encode()).hexdigest()[:24]
    with FileLock(Path(tempfile.gettempdir()) / f"lepidopt-study-{name}.lock"):
        yield


def create_study(run: Run, *, initialize: Callable[[Any, Run], None], heartbeat: Heartbeat | None = None,
                 n_trials: int | None = None) -> Any:
    """Create ``run``'s study (the study in its storage, ``initialize``-d by its engine, split.json, its total,
    run.yaml) and return it. Call it under ``creation_lock`` when the folder holds no run.yaml. Raises
    StudyError, leaving the storage as it was, when the storage holds a study of that name already."""
    with stopping_on_signals(), _undone_on_failure(run) as made:
        made.make_folder()
        made.storage = open_storage(run.storage, heartbeat=heartbeat)
        study = _claim(run, made.storage, initialize=initialize)
        made.claimed = True
        scan = scan_source(run.data)
        split = make_split(scan, seed=run.seed, val_fraction=run.val_fraction, test_fraction=run.test_fraction,
                           data=run.data)
        made.files.append(run.folder / "split.json")
        write_split(split, run.folder / "split.json")
        counts = split.counts()
        log.info("split %d images of %d classes: %d train, %d val, %d test (%d skipped, %d classes dropped) -> %s",
                 len(split.paths), len(split.classes), *(sum(counts[s].values()) for s in ("train", "val", "test")),
                 len(split.skipped), len(split.dropped_classes), run.folder / "split.json")
        if split.taxonomy is not None:
            log.info("taxonomy: %s", ", ".join(f"{len(classes)} {level}" for level, classes in
                                               zip(split.taxonomy.levels, split.taxonomy.classes)))
        for level, missing in split.missing_from().items():
            log.warning("%d %s classes have no image in val and %d none in test: their scores there are left out "
                        "of the %s metrics", missing["val"], level, missing["test"], level)
        if n_trials is not None:
            study.set_user_attr(attrs.TOTAL, n_trials)
        made.files.append(run.folder / "run.yaml")
        write_run(run)
    return study


def resume_study(run: Run, *, heartbeat: Heartbeat | None = None,
                 n_trials: int | None = None) -> tuple[Any, StudyData]:
    """Open ``run``'s existing study (its storage must hold it: nothing is created otherwise), check its split
    against its data, record the run's settings (sampler, pruner, seed may change) and its total, and rewrite
    run.yaml. Returns the study and the study's data."""
    fix = (f"Give the {option('storage')} the study was created with; if the study is gone from it, delete the folder "
           f"{str(run.folder)!r} to create it again.")
    study = load_study(run, existing_storage(run.storage, run.study, heartbeat=heartbeat, fix=fix))
    recorded = study.user_attrs.get(attrs.RUN, {}).get("data")
    if recorded is not None and recorded != run.data.to_dict():
        raise StudyError(
            f"study {run.study!r}", f"storage {mask_password(run.storage)!r} holds a study of that name made from "
            f"{recorded.get('source')}, not from {run.data.source}, the data in {str(run.folder / 'run.yaml')!r}.",
            fix=f"Give the {option('storage')} the study was created with."
        )
    data = study_data(run)  # the split is still the one made from this data, and its images are unchanged
    update_record(study, run)
    if n_trials is not None:
        study.set_user_attr(attrs.TOTAL, n_trials)
    write_run(run)
    return study, data


def _claim(run: Run, storage: Any, *, initialize: Callable[[Any, Run], None]) -> Any:
    """The study created in ``storage`` under the run's name, or the StudyError that says who holds the name."""
    import optuna

    if run.study not in study_names(storage):
        try:
            return record_study(run, storage, initialize=initialize)
        except optuna.exceptions.DuplicatedStudyError:
            pass  # another machine claimed it a moment ago
    record = optuna.load_study(study_name=run.study, storage=storage).user_attrs.get(attrs.RUN) or {}
    shown = mask_password(run.storage)
    if record.get("results_dir") not in (None, str(run.results_dir)):
        raise StudyError(
            f"study {run.study!r}", f"exists already in storage {shown!r}, created with its folder in "
            f"{record['results_dir']}, and {str(run.folder)!r} holds no run.yaml of it.",
            fix=f"To resume it, give {option('results_dir', record['results_dir'])}; to start a new study, choose "
                f"another {option('study')}."
        )
    path = storage_file(run.storage)
    in_folder = path is not None and path.parent == run.folder
    delete = "" if in_folder else (f" and the study in its storage (optuna delete-study --study-name {run.study} "
                                   "--storage URL)")
    raise StudyError(
        f"study {run.study!r}", f"storage {shown!r} holds it, but its folder {str(run.folder)!r} has no run.yaml "
        "yet: another process is creating it, or a creation of it was killed.",
        fix="Once it is created, run the same command again to resume it, or start workers; if no creation is "
            f"running, delete the folder{delete} to create it again."
    )


class _Made:
    """What this creation has made so far, and how to remove it again."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.storage_path = storage_file(run.storage)
        self.storage_existed = self.storage_path is not None and self.storage_path.exists()
        self.created_dirs: list[Path] = []  # the folders this creation made, outermost first
        self.files: list[Path] = []
        self.storage: optuna.storages.BaseStorage | None = None  # the opened storage
        self.claimed = False  # the study in the storage is this creation's

    def make_folder(self) -> None:
        missing, folder = [], self.run.folder
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        self.run.folder.mkdir(parents=True, exist_ok=True)
        self.created_dirs = missing[::-1]

    def undo(self) -> None:
        for step in (self._delete_study, self._remove_storage_file, self._remove_files):
            try:
                step()
            except Exception as exc:  # the original error is what the user must see; this one is logged
                log.warning("could not undo part of the creation of study %r: %s", self.run.study, exc)

    def _delete_study(self) -> None:
        if self.claimed and self.storage is not None and (self.storage_path is None or self.storage_existed):
            import optuna

            optuna.delete_study(study_name=self.run.study, storage=self.storage)

    def _remove_storage_file(self) -> None:
        if self.storage_path is None or self.storage_existed:
            return
        if self.storage is not None and hasattr(self.storage, "engine"):
            self.storage.engine.dispose()
        for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
            Path(f"{self.storage_path}{suffix}").unlink(missing_ok=True)

    def _remove_files(self) -> None:
        if self.run.folder in self.created_dirs:
            shutil.rmtree(self.run.folder, ignore_errors=True)
        else:
            for path in self.files:
                path.unlink(missing_ok=True)
        for folder in reversed(self.created_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: another study may have started there meanwhile


@contextlib.contextmanager
def _undone_on_failure(run: Run) -> Iterator[_Made]:
    made = _Made(run)
    try:
        yield made
    except BaseException:
        made.undo()
        raise
