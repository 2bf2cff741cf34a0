"""The run of a study (data, space, engine settings, seeds) as run.yaml and the study record hold it, and
the names of its settings (``lepidopt.resolve`` resolves them from flags, run.yaml and defaults)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from ._files import write_text_atomically
from ._numbers import whole_number
from .data import DataSpec
from .errors import SettingError, StorageError, StudyError
from .spaces import Space, space_from_dict

__all__ = ["Run", "DEFAULTS", "DEFINING", "check_augment_views", "DEFAULT_AUGMENT_VIEWS", "DEFAULT_FEATURE_CACHE_LIMIT",
           "run_from_dict", "read_run", "write_run", "mask_password", "absolute_storage", "storage_file",
           "default_storage", "study_dir"]

RUN_VERSION = 1
# Augmented feature passes the cache keeps per augmentation strength. Four: a head trains for ~8 epochs in
# the built-in spaces, so each view is seen about twice, and filling them costs four backbone passes over
# the training split per strength level, which one uncached augmented trial spends in half its epochs.
# More views come closer to on-the-fly augmentation and cost more passes and disk.
DEFAULT_AUGMENT_VIEWS = 4
DEFAULT_FEATURE_CACHE_LIMIT = 50 * 1024**3  # bytes
DEFINING = ("data", "space", "objective", "weights", "val_fraction", "test_fraction", "feature_cache",
             "augment_views", "engine", "tuner", "strategy", "decode")
DEFAULTS: dict[str, Any] = {
    "objective": "balanced_accuracy",
    "weights": None,
    "val_fraction": 0.15,
    "test_fraction": 0.15,
    "sampler": None,  # the engine's: Optuna's default is tpe
    "pruner": None,  # the engine's: Optuna's default is median
    "strategy": None,  # the engine's: Optuna stages a space that searches whether to fine-tune
    "seed": 0,
    "augment_views": DEFAULT_AUGMENT_VIEWS,
    "feature_cache": True,
    "feature_cache_limit": DEFAULT_FEATURE_CACHE_LIMIT,
    "engine": "optuna",
    "tuner": None,
    "storage": None,
    "decode": "independent",  # a taxonomy study's: each level's own argmax, or "consistent" paths of the tree
}


@dataclasses.dataclass(frozen=True)
class Run:
    study: str
    results_dir: Path
    storage: str  # the full URL, password included; never written or printed as is
    data: DataSpec
    space: Space
    objective: str = "balanced_accuracy"
    weights: str | None = None  # overrides the space's weights when set
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    sampler: str | None = "tpe"  # None with engine keras-tuner
    pruner: str | None = "median"
    strategy: str = "joint"  # what a study recorded before it had a strategy ran
    seed: int = 0
    augment_views: int = DEFAULT_AUGMENT_VIEWS
    feature_cache: bool = True  # trials share backbone features through the study's cache
    feature_cache_limit: int = DEFAULT_FEATURE_CACHE_LIMIT  # bytes the cache folder may take
    engine: str = "optuna"
    tuner: str | None = None  # Keras Tuner's oracle, with engine keras-tuner
    decode: str = "independent"  # how a taxonomy study's predictions are read (trial.DECODERS)

    @property
    def folder(self) -> Path:
        return study_dir(self.results_dir, self.study)

    def to_dict(self) -> dict[str, Any]:
        """What run.yaml holds: everything a resume or a worker needs, the password masked."""
        return {
            "version": RUN_VERSION,
            "study": self.study,
            "storage": mask_password(self.storage),
            "data": self.data.to_dict(),
            "space": self.space.to_dict(),
            "objective": self.objective,
            "weights": self.weights,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "strategy": self.strategy,
            "seed": self.seed,
            "augment_views": self.augment_views,
            "feature_cache": self.feature_cache,
            "feature_cache_limit": self.feature_cache_limit,
            "engine": self.engine,
            "tuner": self.tuner,
            **({"decode": self.decode} if self.data.levels is not None else {}),  # decoding needs levels
        }


def run_from_dict(saved: Mapping[str, Any], *, storage: str, results_dir: str | Path) -> Run:
    """The Run recorded in a study (``Run.to_dict()``), with the real storage URL and the folder it lives in
    on this machine."""
    if not isinstance(saved, Mapping) or saved.get("version") != RUN_VERSION:
        raise StudyError("study record", f"not a lepidopt run of version {RUN_VERSION}; was the study made by "
                         "lepidopt?")
    options = {k: saved[k] for k in DEFAULTS if k in saved and k != "storage"}
    return Run(study=saved["study"], results_dir=Path(results_dir).resolve(), storage=storage,
               data=DataSpec.from_dict(saved["data"]), space=space_from_dict(saved["space"], source="study space"),
               **options)


def study_dir(results_dir: str | Path, study: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", study or ""):
        raise StudyError(
            f"study name {study!r}", "use letters, digits, '_', '.' and '-' (it names a folder), starting with a "
            "letter or digit."
        )
    return Path(results_dir).resolve() / study


def mask_password(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return re.sub(r"([^:/@]+):([^@/]*)@", r"\1:***@", url)


def default_storage(folder: Path) -> str:
    return f"sqlite:///{folder / 'study.db'}"


def storage_file(url: str) -> Path | None:
    """The file an SQLite or journal storage URL names (as written: maybe relative), or None for a server; an
    empty path is refused."""
    if url.startswith("journal:"):
        text = url[len("journal:"):]
    else:
        scheme, sep, rest = url.partition(":///")
        if not (sep and scheme.split("+", 1)[0] == "sqlite"):
            return None
        text = rest.split("?", 1)[0]
    if not text:
        raise StorageError(
            f"storage {mask_password(url)!r}", "names no file.", fix="Write sqlite:///PATH (three slashes, then a "
            "path: sqlite:///study.db is relative, sqlite:////tmp/study.db absolute) or journal:PATH."
        )
    return Path(text)


def absolute_storage(url: str) -> str:
    """``url`` with a relative SQLite or journal file made absolute against the current folder, so that the
    study is found again from any folder. A server URL is returned as it is."""
    path = storage_file(url)
    if path is None:
        return url
    if str(path) == ":memory:":
        raise StorageError(f"storage {url!r}", "a study in memory is lost when the process ends; give a file path.")
    absolute = str(path.expanduser().absolute())
    if url.startswith("journal:"):
        return f"journal:{absolute}"
    scheme, _, rest = url.partition(":///")
    query = rest.partition("?")[1] + rest.partition("?")[2]
    return f"{scheme}:///{absolute}{query}"


# What a run.yaml written before a setting existed ran with, where the setting's default is no longer that.
RECORDED_BEFORE = {"strategy": "joint"}


def read_run(folder: Path) -> dict[str, Any] | None:
    path = folder / "run.yaml"
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise StudyError(f"run file {str(path)!r}", f"is not valid YAML ({exc}).") from None
    if not isinstance(data, dict) or data.get("version") != RUN_VERSION:
        raise StudyError(f"run file {str(path)!r}", f"not a lepidopt run.yaml of version {RUN_VERSION}.")
    return {**RECORDED_BEFORE, **data}


def write_run(run: Run) -> None:
    run.folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(run.folder / "run.yaml", yaml.safe_dump(run.to_dict(), sort_keys=False))


def check_augment_views(value: Any) -> None:
    """The one rule for ``augment_views``: a whole number of at least 1."""
    if not whole_number(value, at_least=1):
        raise SettingError("augment_views", value, "must be a whole number of at least 1 (the augmented passes over "
                           "the training images cached per augmentation strength).")
