"""The three kinds of data source (image folder, ETHEC JSON manifest, CSV manifest) read into records."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .._numbers import whole_number
from ..errors import DataError, SettingError, option
from ._records import Record

__all__ = ["DataSpec", "read_records", "manifest_root", "visible_files", "LABEL_LEVELS", "IMAGE_SUFFIXES"]

LABEL_LEVELS = ("family", "subfamily", "genus", "species")
FORMATS = ("auto", "folder", "ethec", "csv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Where the images are and how to label them; recorded in run.yaml so every worker reads the same."""

    source: str
    format: str = "auto"
    label_level: str = "family"
    image_root: str | None = None
    path_column: str = "path"
    label_column: str = "label"
    val_manifest: str | None = None
    test_manifest: str | None = None
    min_size: int = 32
    min_per_class: int = 10
    levels: tuple[str, ...] | None = None  # the taxonomy's levels, coarse to fine; None: one label

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise SettingError("format", self.format, f"must be one of {', '.join(FORMATS)}.")
        if self.label_level not in LABEL_LEVELS:
            raise SettingError("label_level", self.label_level, f"must be one of {', '.join(LABEL_LEVELS)}.")
        if self.levels is not None:
            object.__setattr__(self, "levels", _checked_levels(self.levels))
        if not whole_number(self.min_per_class, at_least=3):
            raise SettingError("min_per_class", self.min_per_class,
                               "must be at least 3, one image each for train, val and test.")
        if not whole_number(self.min_size, at_least=1):
            raise SettingError("min_size", self.min_size, "must be at least 1 px.")
        if (self.val_manifest is None) != (self.test_manifest is None):
            given = "val_manifest" if self.val_manifest is not None else "test_manifest"
            raise SettingError(given, getattr(self, given), "give the validation and the test manifest together "
                               "(the source's own split), or neither.")

    @property
    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        path = Path(self.source)
        if path.is_dir():
            return "folder"
        if path.suffix.lower() == ".json":
            return "ethec"
        if path.suffix.lower() == ".csv":
            return "csv"
        if not path.exists():
            raise DataError(f"data source {self.source!r}", "does not exist.", fix="Check the path.")
        raise DataError(
            f"data source {self.source!r}", "cannot tell its format (a folder, a .json ETHEC manifest or a .csv).",
            fix=f"Set {option('format')} to folder, ethec or csv."
        )

    def to_dict(self) -> dict[str, Any]:
        """As run.yaml and split.json record it; ``levels`` only when given, so a single-level study's records
        read as they always have."""
        data = dataclasses.asdict(self)
        if self.levels is None:
            del data["levels"]
        else:
            data["levels"] = list(self.levels)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DataSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DataError("data settings", f"unknown key {unknown[0]!r}; known: {sorted(known)}.")
        return cls(**data)


def _checked_levels(levels: Any) -> tuple[str, ...]:
    """Two or more distinct, non-empty level names; a comma-separated string is split."""
    given = levels
    if isinstance(levels, str):
        levels = [part.strip() for part in levels.split(",")]
    if not isinstance(levels, (list, tuple)) or not all(isinstance(level, str) and level for level in levels) \
            or len(levels) < 2 or len(set(levels)) != len(levels):
        raise SettingError("levels", given, "must name two or more distinct levels, coarse to fine, e.g. "
                           "family,subfamily,genus,species (ETHEC), a CSV's label columns, or the depths of nested "
                           "class folders.")
    reserved = [level for level in levels if level in RESERVED_LEVEL_NAMES or "." in level]
    if reserved:
        raise SettingError("levels", given, f"names level {reserved[0]!r}, which metric and prediction columns "
                           f"use for something else ({', '.join(RESERVED_LEVEL_NAMES)}, or a name with a dot).",
                           fix="Rename that level (for a CSV, its column).")
    return tuple(levels)


# mean.* and tree.* name metrics over the levels; path, label and error name prediction columns
RESERVED_LEVEL_NAMES = ("mean", "tree", "path", "label", "error")


def read_records(spec: DataSpec) -> list[Record]:
    """Every labelled image the source names (not yet checked), with its subset when the source has a split.
    A path named twice (within a manifest, or in two of the train, val and test manifests) is refused."""
    fmt = spec.resolved_format
    if not Path(spec.source).exists():
        raise DataError(f"data source {spec.source!r}", "does not exist.", fix="Check the path.")
    if spec.image_root is not None and not Path(spec.image_root).is_dir():
        raise DataError(f"image root {spec.image_root!r}", "is not a folder.", fix=f"Check {option('image_root')}.")
    if fmt == "folder":
        if spec.val_manifest:
            raise DataError("val_manifest/test_manifest", "only an ETHEC or CSV source can carry its own split.")
        records = (_folder_records(Path(spec.source)) if spec.levels is None
                   else _nested_folder_records(Path(spec.source), spec.levels))
    else:
        if Path(spec.source).is_dir():
            raise DataError(
                f"data source {spec.source!r}", f"is a folder, not a{'n ETHEC JSON' if fmt == 'ethec' else ' CSV'} "
                "manifest.", fix=f"Use {option('format', 'folder')} (or auto), or give the manifest's path."
            )
        if fmt == "ethec" and spec.levels is not None:
            _check_ethec_levels(spec.levels)
        records = _manifest_records(spec, _ethec_records if fmt == "ethec" else _csv_records)
        _refuse_repeated_paths(spec, records)
    if spec.levels is not None:
        from ._taxonomy import Taxonomy

        Taxonomy.from_paths(spec.levels, [r.lineage for r in records], names=[f"image {r.path!r}" for r in records])
    return records


def _labelled(path: str, lineage: Sequence[str], subset: str | None = None) -> Record:
    """A record labelled by its lineage, coarse to fine (its label the coarsest level's)."""
    return Record(path=path, label=lineage[0], subset=subset, lineage=tuple(lineage))


def _folder_records(root: Path) -> list[Record]:
    """Files under one subfolder per class; hidden files and folders (a leading '.') are skipped."""
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r}", "is not a folder.")
    records = [Record(path=str(file.resolve()), label=class_dir.name)
               for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
               for file in visible_files(class_dir)]
    if not records:
        top = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
        images = [p for p in top if p.suffix.lower() in IMAGE_SUFFIXES]
        found = (f"{len(images)} image files at its top level (e.g. {images[0].name!r}) and no class subfolders"
                 if images else f"{len(top)} files and no class subfolder with files in it")
        raise DataError(
            f"image folder {str(root)!r}", f"holds {found}.",
            fix="Expected one subfolder per class with its images inside, e.g. root/Nymphalidae/img001.jpg; for "
                "images labelled another way, give a CSV manifest with a path and a label column."
        )
    return records


def _nested_folder_records(root: Path, levels: tuple[str, ...]) -> list[Record]:
    """Files ``len(levels)`` class folders deep, one folder per level (``root/family/subfamily/genus/img.jpg``),
    labelled by the folders they lie in; a file higher up has no label at some level and is refused."""
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r}", "is not a folder.")
    records, shallow = [], []
    for file in visible_files(root):
        parts = file.relative_to(root).parts
        if len(parts) <= len(levels):
            shallow.append(file)
        else:
            records.append(_labelled(str(file.resolve()), parts[: len(levels)]))
    example = f"root/{'/'.join(f'<{level}>' for level in levels)}/img001.jpg"
    if shallow:
        raise DataError(
            f"image folder {str(root)!r}", f"{len(shallow)} files lie fewer than {len(levels)} class folders deep "
            f"(e.g. {str(shallow[0].relative_to(root))!r}), so they have no {levels[-1]} label; with "
            f"{option('levels', ','.join(levels))} every image lies in one folder per level, e.g. {example}.",
            fix=f"Move them into class folders, or give fewer {option('levels')}."
        )
    if not records:
        raise DataError(f"image folder {str(root)!r}", f"holds no images; expected one folder per level, e.g. "
                        f"{example}.")
    return records


def visible_files(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted, leaving out hidden files and folders (a leading '.')."""
    return [file for file in sorted(folder.rglob("*"))
            if file.is_file() and not any(part.startswith(".") for part in file.relative_to(folder).parts)]


def _refuse_repeated_paths(spec: DataSpec, records: list[Record]) -> None:
    where: dict[str, list[str | None]] = {}
    for r in records:
        where.setdefault(r.path, []).append(r.subset)
    repeated = [path for path, subsets in where.items() if len(subsets) > 1]
    if not repeated:
        return
    examples = ", ".join(repr(p) for p in repeated[:2])
    if spec.val_manifest is not None:
        raise DataError(
            f"split manifests {spec.source!r}, {spec.val_manifest!r} and {spec.test_manifest!r}",
            f"{len(repeated)} image paths are named more than once (e.g. {examples}, in "
            f"{' and '.join(map(str, where[repeated[0]]))}); an image may be in one of train, val and test only.",
            fix="Give three manifests that do not overlap."
        )
    raise DataError(f"manifest {spec.source!r}", f"{len(repeated)} image paths are named more than once "
                    f"(e.g. {examples}); each image may be listed once.", fix="Remove the repeated rows.")


def manifest_root(spec: DataSpec, manifest: Path | None = None) -> Path:
    """The folder a manifest's image paths are read against: --image-root, else the manifest's own folder."""
    return Path(spec.image_root).resolve() if spec.image_root else Path(manifest or spec.source).resolve().parent


def _manifest_records(spec: DataSpec, read_one: Callable[..., list[Record]]) -> list[Record]:
    """One manifest, or the source's own train/val/test manifests with image paths relative to the first."""
    if spec.val_manifest is None or spec.test_manifest is None:  # DataSpec gives both or neither
        return read_one(Path(spec.source), spec, subset=None)
    records = []
    for subset, path in zip(("train", "val", "test"), (spec.source, spec.val_manifest, spec.test_manifest)):
        records += read_one(Path(path), spec, subset=subset, root=manifest_root(spec, Path(spec.source)))
    return records


def _ethec_records(manifest: Path, spec: DataSpec, *, subset: str | None, root: Path | None = None) -> list[Record]:
    root = root or manifest_root(spec, manifest)
    try:
        data = json.loads(manifest.read_text())
    except FileNotFoundError:
        raise DataError(f"ETHEC manifest {str(manifest)!r}", "does not exist.") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"ETHEC manifest {str(manifest)!r}", f"is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise DataError(
            f"ETHEC manifest {str(manifest)!r}", f"must be a JSON object keyed by token, got {type(data).__name__}."
        )
    records = []
    for token, entry in data.items():
        where = f"ETHEC manifest {manifest.name!r}, record {token!r}"
        if not isinstance(entry, dict):
            raise DataError(where, f"must be an object, got {entry!r}.")
        path = str(root / _ethec_relative_path(entry, where))
        if spec.levels is None:
            records.append(Record(path=path, label=_ethec_label(entry, spec.label_level, where), subset=subset))
        else:
            records.append(_labelled(path, [_ethec_label(entry, level, where) for level in spec.levels], subset))
    if not records:
        raise DataError(f"ETHEC manifest {str(manifest)!r}", "has no records.")
    return records


def _ethec_relative_path(entry: Mapping[str, Any], where: str) -> str:
    image_path = str(entry.get("image_path") or "")
    image_name = str(entry.get("image_name") or "")
    if not image_path and not image_name:
        raise DataError(where, "has neither 'image_path' nor 'image_name'.")
    # Some real ETHEC records carry the file name in image_path and leave image_name empty.
    return str(Path(image_path) / image_name) if image_name else image_path


def _check_ethec_levels(levels: tuple[str, ...]) -> None:
    unknown = [level for level in levels if level not in LABEL_LEVELS]
    if unknown or list(levels) != sorted(levels, key=LABEL_LEVELS.index):
        rule = (f"{unknown[0]!r} is not an ETHEC level" if unknown else "are not in order, coarse to fine")
        raise SettingError("levels", ",".join(levels), f"{rule}; an ETHEC manifest has the levels "
                           f"{', '.join(LABEL_LEVELS)}, and any two or more of them, in that order, form its tree.")


def _ethec_label(entry: Mapping[str, Any], level: str, where: str) -> str:
    fields = ("genus", "specific_epithet") if level == "species" else (level,)
    values = []
    for field in fields:
        value = entry.get(field)
        if not isinstance(value, str) or not value.strip():
            raise DataError(where, f"field {field!r} is missing or empty, needed for "
                            f"{option('label_level', level)}.")
        values.append(value.strip())
    return "_".join(values)


def _csv_records(manifest: Path, spec: DataSpec, *, subset: str | None, root: Path | None = None) -> list[Record]:
    root = root or manifest_root(spec, manifest)
    try:
        if manifest.stat().st_size == 0:
            raise DataError(f"CSV manifest {str(manifest)!r}", "is empty (0 bytes); it needs a header line with the "
                            f"columns {spec.path_column!r} and {spec.label_column!r}, then one line per image.")
        with manifest.open(newline="") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            needed = [(spec.path_column, "path_column")] + ([(spec.label_column, "label_column")] if spec.levels is None
                                                            else [(level, "levels") for level in spec.levels])
            for column, setting in needed:
                if column not in columns:
                    raise DataError(
                        f"CSV manifest {str(manifest)!r}", f"has no column {column!r} (columns: {columns}); "
                        f"name the right one with {option(setting)}."
                    )
            rows = list(reader)
    except FileNotFoundError:
        raise DataError(f"CSV manifest {str(manifest)!r}", "does not exist.") from None
    records = []
    for line, row in enumerate(rows, start=2):
        path = (row.get(spec.path_column) or "").strip()
        if spec.levels is None:
            label = (row.get(spec.label_column) or "").strip()
            if not path or not label:
                raise DataError(f"CSV manifest {manifest.name!r}, line {line}", "empty path or label.")
            records.append(Record(path=str(root / path), label=label, subset=subset))
            continue
        lineage = [(row.get(level) or "").strip() for level in spec.levels]
        empty = [level for level, label in zip(spec.levels, lineage) if not label]
        if not path or empty:
            raise DataError(f"CSV manifest {manifest.name!r}, line {line}",
                            f"empty {'path' if not path else 'label in column ' + repr(empty[0])}; with "
                            f"{option('levels')} every row names its class at each level.")
        records.append(_labelled(str(root / path), lineage, subset))
    if not records:
        raise DataError(f"CSV manifest {str(manifest)!r}", "has no rows.")
    return records
