"""The resolved run of a study (data, space, engine settings, seeds) and its run.yaml.

Settings come from three places, resolved here and nowhere else: the command line first, then the
study's run.yaml, then the defaults. Settings that define the study (data, space, objective, split,
weights, how features are cached and augmented, engine and Keras Tuner's oracle) cannot change once it
exists; the other settings (sampler, pruner, seed, the feature cache's size limit) can.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from ._files import write_text_atomically
from ._sizes import parse_size
from .data import DataSpec
from .errors import SettingError, StorageError, StudyError
from .spaces import Space, load_space, space_from_dict

__all__ = ["Run", "check_augment_views", "DEFAULT_AUGMENT_VIEWS", "DEFAULT_FEATURE_CACHE_LIMIT", "resolve_run", "run_from_dict", "read_run",
           "write_run", "mask_password", "absolute_storage", "storage_file", "default_storage", "study_dir", "SAMPLERS",
           "PRUNERS", "ENGINES", "TUNERS"]

SAMPLERS = ("tpe", "gp", "cmaes", "random", "qmc")
PRUNERS = ("median", "hyperband", "sh", "none")
ENGINES = ("optuna", "keras-tuner")
TUNERS = ("hyperband", "bayesian", "random", "grid")  # Keras Tuner's oracles
RUN_VERSION = 1
# Augmented feature passes the cache keeps per augmentation strength. Four: a head trains for ~8 epochs in
# the built-in spaces, so each view is seen about twice, and filling them costs four backbone passes over
# the training split per strength level, which one uncached augmented trial spends in half its epochs.
# More views come closer to on-the-fly augmentation and cost more passes and disk.
DEFAULT_AUGMENT_VIEWS = 4
DEFAULT_FEATURE_CACHE_LIMIT = 50 * 1024**3  # bytes
_DEFINING = ("data", "space", "objective", "weights", "val_fraction", "test_fraction", "feature_cache",
             "augment_views", "engine", "tuner")
_DEFAULTS: dict[str, Any] = {
    "objective": "balanced_accuracy",
    "weights": None,
    "val_fraction": 0.15,
    "test_fraction": 0.15,
    "sampler": "tpe",
    "pruner": "median",
    "seed": 0,
    "augment_views": DEFAULT_AUGMENT_VIEWS,
    "feature_cache": True,
    "feature_cache_limit": DEFAULT_FEATURE_CACHE_LIMIT,
    "engine": "optuna",
    "tuner": None,
    "storage": None,
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
    seed: int = 0
    augment_views: int = DEFAULT_AUGMENT_VIEWS
    feature_cache: bool = True  # trials share backbone features through the study's cache
    feature_cache_limit: int = DEFAULT_FEATURE_CACHE_LIMIT  # bytes the cache folder may take
    engine: str = "optuna"
    tuner: str | None = None  # Keras Tuner's oracle, with engine keras-tuner

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
            "seed": self.seed,
            "augment_views": self.augment_views,
            "feature_cache": self.feature_cache,
            "feature_cache_limit": self.feature_cache_limit,
            "engine": self.engine,
            "tuner": self.tuner,
        }


def run_from_dict(saved: Mapping[str, Any], *, storage: str, results_dir: str | Path) -> Run:
    """The Run recorded in a study (``Run.to_dict()``), with the real storage URL and the folder it lives in
    on this machine."""
    if not isinstance(saved, Mapping) or saved.get("version") != RUN_VERSION:
        raise StudyError(f"study record: not a lepidopt run of version {RUN_VERSION}; was the study made by lepidopt?")
    options = {k: saved[k] for k in _DEFAULTS if k in saved and k != "storage"}
    return Run(study=saved["study"], results_dir=Path(results_dir).resolve(), storage=storage,
               data=DataSpec.from_dict(saved["data"]), space=space_from_dict(saved["space"], source="study space"),
               **options)


def study_dir(results_dir: str | Path, study: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", study or ""):
        raise StudyError(
            f"study name {study!r}: use letters, digits, '_', '.' and '-' (it names a folder), starting with a "
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
            f"storage {mask_password(url)!r}: names no file. Write sqlite:///PATH (three slashes, then a path: "
            "sqlite:///study.db is relative, sqlite:////tmp/study.db absolute) or journal:PATH."
        )
    return Path(text)


def absolute_storage(url: str) -> str:
    """``url`` with a relative SQLite or journal file made absolute against the current folder, so that the
    study is found again from any folder. A server URL is returned as it is."""
    path = storage_file(url)
    if path is None:
        return url
    if str(path) == ":memory:":
        raise StorageError(f"storage {url!r}: a study in memory is lost when the process ends; give a file path.")
    absolute = str(path.expanduser().absolute())
    if url.startswith("journal:"):
        return f"journal:{absolute}"
    scheme, _, rest = url.partition(":///")
    query = rest.partition("?")[1] + rest.partition("?")[2]
    return f"{scheme}:///{absolute}{query}"


def read_run(folder: Path) -> dict[str, Any] | None:
    path = folder / "run.yaml"
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise StudyError(f"run file {str(path)!r}: is not valid YAML ({exc}).") from None
    if not isinstance(data, dict) or data.get("version") != RUN_VERSION:
        raise StudyError(f"run file {str(path)!r}: not a lepidopt run.yaml of version {RUN_VERSION}.")
    return data


def write_run(run: Run) -> None:
    run.folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(run.folder / "run.yaml", yaml.safe_dump(run.to_dict(), sort_keys=False))


def resolve_run(*, study: str, results_dir: str | Path = "results", data: DataSpec | Mapping | str | None = None,
                space: Space | str | None = None, **options: Any) -> Run:
    """The run for ``study``: given options, then its run.yaml, then defaults. Options left as None are not given.

    Raises StudyError when a new study lacks data or space, or when an option would change what
    defines an existing study; SettingError for a value an option cannot take.
    """
    unknown = sorted(set(options) - set(_DEFAULTS))
    if unknown:
        raise StudyError(f"run option {unknown[0]!r}: unknown; known options are {sorted(_DEFAULTS)}.")
    folder = study_dir(results_dir, study)
    saved = read_run(folder)
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if "storage" in given:
        given["storage"] = absolute_storage(given["storage"])
    if given.get("weights") not in (None, "imagenet", "none"):
        given["weights"] = str(Path(given["weights"]).resolve())  # a worker may run from another folder
    if "feature_cache_limit" in given:
        given["feature_cache_limit"] = parse_size(given["feature_cache_limit"], setting="feature_cache_limit")
    if data is not None:
        given["data"] = _data_spec(data).to_dict()
    if space is not None:
        given["space"] = (space if isinstance(space, Space) else load_space(space)).to_dict()

    if saved is None:
        missing = [k for k in ("data", "space") if k not in given]
        if missing:
            raise StudyError(
                f"study {study!r}: does not exist yet in {str(folder.parent)!r}, so it needs --{missing[0]} "
                "to start. To resume a study, give the name (and --results-dir) it was created with."
            )
        merged = {**_DEFAULTS, **given}
    else:
        if "space" in given and given["space"] != saved.get("space"):
            raise StudyError(
                f"study {study!r}: the space {given['space']['name']!r} given differs from the space recorded in its "
                "run.yaml, and a study's space cannot change. Drop --space to resume, or start a new --study."
            )
        if "data" in given and given["data"] != saved.get("data"):
            raise StudyError(f"study {study!r}: {_data_difference(saved.get('data') or {}, given['data'])}; a "
                             "study's data cannot change. Drop --data to resume, or start a new --study.")
        for key in _DEFINING:
            if key not in ("space", "data") and key in given and given[key] != saved.get(key, _DEFAULTS.get(key)):
                raise StudyError(
                    f"study {study!r}: was created with {key} = {_short(saved.get(key, _DEFAULTS.get(key)))}, not "
                    f"{_short(given[key])}; {key} cannot change within a study. Drop the option to resume, or start "
                    "a new --study."
                )
        merged = {**_DEFAULTS, **{k: v for k, v in saved.items() if k in _DEFAULTS or k in ("data", "space")}, **given}
        if "storage" not in given and "***" in str(saved.get("storage")):
            raise StudyError(
                f"study {study!r}: its storage URL holds a password, which run.yaml does not keep; "
                "pass --storage with the full URL."
            )
    storage = merged.pop("storage") or default_storage(folder)
    _check_settings(merged, given)
    return Run(
        study=study,
        results_dir=Path(results_dir).resolve(),
        storage=storage,
        data=DataSpec.from_dict(merged.pop("data")),
        space=space_from_dict(merged.pop("space"), source="run.yaml space"),
        **merged,
    )


def _check_settings(merged: dict[str, Any], given: dict[str, Any]) -> None:
    """Each setting takes a value it can, and the engine and its settings agree; Keras Tuner's oracle defaults
    to Hyperband."""
    if merged["engine"] not in ENGINES:
        raise SettingError("engine", merged["engine"], f"must be one of {', '.join(ENGINES)}.")
    if merged["engine"] == "optuna":
        if merged["tuner"] is not None:
            raise SettingError("tuner", merged["tuner"], "is a Keras Tuner setting; add --engine keras-tuner, or "
                               "choose Optuna's --sampler and --pruner instead.")
        if merged["sampler"] not in SAMPLERS:
            raise SettingError("sampler", merged["sampler"], f"must be one of {', '.join(SAMPLERS)}.")
        if merged["pruner"] not in PRUNERS:
            raise SettingError("pruner", merged["pruner"], f"must be one of {', '.join(PRUNERS)}.")
    else:
        for optuna_only in ("sampler", "pruner"):
            if optuna_only in given:
                raise SettingError(optuna_only, given[optuna_only], "is an Optuna setting, and this study's engine is "
                                   f"keras-tuner; choose Keras Tuner's oracle with --tuner {'|'.join(TUNERS)}.")
        merged["tuner"] = merged["tuner"] or "hyperband"
        merged["sampler"] = merged["pruner"] = None  # Keras Tuner's oracle samples and schedules
        if merged["tuner"] not in TUNERS:
            raise SettingError("tuner", merged["tuner"], f"must be one of {', '.join(TUNERS)}.")
    if isinstance(merged["seed"], bool) or not isinstance(merged["seed"], int) or merged["seed"] < 0:
        raise SettingError("seed", merged["seed"], "must be a whole number, 0 or more.")
    check_augment_views(merged["augment_views"])
    if not isinstance(merged["feature_cache"], bool):
        raise SettingError("feature_cache", merged["feature_cache"], "must be true or false.")


def check_augment_views(value: Any) -> None:
    """The one rule for ``augment_views``: a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingError("augment_views", value, "must be a whole number of at least 1 (the augmented passes over "
                           "the training images cached per augmentation strength).")


def _data_difference(saved: Mapping[str, Any], given: Mapping[str, Any]) -> str:
    """How the data given differs from the data a study was created with, in words."""
    if saved.get("source") != given.get("source"):
        return f"its data is {saved.get('source')}, and --data names {given.get('source')}"
    changed = [f"{key} {saved.get(key)!r}, not {given.get(key)!r}" for key in given if saved.get(key) != given.get(key)]
    return f"its data {saved.get('source')} was read with {'; '.join(changed)}"


def _data_spec(data: DataSpec | Mapping | str) -> DataSpec:
    spec = data if isinstance(data, DataSpec) else DataSpec(source=data) if isinstance(data, str) else \
        DataSpec.from_dict(data)
    absolute: dict[str, Any] = {k: str(Path(v).resolve()) for k in ("source", "image_root", "val_manifest",
                                                                    "test_manifest") if (v := getattr(spec, k))}
    return dataclasses.replace(spec, **absolute)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "..."
