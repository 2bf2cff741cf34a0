"""The images a prediction source names: folders (recursive), image files, CSV or ETHEC manifests, lists of paths."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Iterable

from ..data import DataSpec, read_records, visible_files
from ..errors import DataError, option

__all__ = ["Item", "items_of", "labelled_items"]


@dataclasses.dataclass(frozen=True)
class Item:
    path: str
    label: str | None = None


def items_of(sources: Iterable[str | Path], *, path_column: str = "path", label_column: str = "label",
             label_level: str = "family", image_root: str | None = None, class_folders: bool = False) -> list[Item]:
    """Every image the sources name, labelled where a manifest says so: a folder gives every file below it
    (hidden ones skipped; the scan then says which are not images), or with ``class_folders`` the files of
    its subfolders labelled by subfolder, as a study reads a folder; a .csv its ``path_column`` (and
    ``label_column`` when it has one), a .json an ETHEC manifest, a .txt one path per line (relative to its
    folder), any other file itself; a path that does not exist is kept, for the scan to report as missing.

    Args:
        sources: Folders, image files, manifests and lists, in the order their images are wanted.
        path_column: The column of image paths in a CSV manifest.
        label_column: The column of labels in a CSV manifest, if it has one.
        label_level: The rank an ETHEC manifest labels by.
        image_root: The folder manifests' and lists' paths are relative to (default: their own folder).
        class_folders: Label a folder's images by their first-level subfolder.

    Returns:
        One item (path, label or None) per image.

    Raises:
        DataError: A manifest that cannot be read, or a folder with no class subfolders (``class_folders``).
    """
    items: list[Item] = []
    for source in sources:
        path = Path(source)
        if path.is_dir() and class_folders:
            items += [Item(r.path, r.label) for r in read_records(DataSpec(str(path), format="folder"))]
        elif path.is_dir():
            items += [Item(str(file.resolve())) for file in visible_files(path)]
        elif not path.exists():
            items.append(Item(str(path.resolve())))  # the scan skips it as a missing file, and says so
        elif path.suffix.lower() == ".csv":
            items += _csv_items(path, path_column=path_column, label_column=label_column, image_root=image_root)
        elif path.suffix.lower() == ".json":
            spec = DataSpec(str(path), format="ethec", label_level=label_level, image_root=image_root)
            items += [Item(r.path, r.label) for r in read_records(spec)]
        elif path.suffix.lower() in (".txt", ".lst"):
            root = Path(image_root) if image_root else path.resolve().parent
            lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            items += [Item(str((root / line).resolve())) for line in lines]
        else:
            items.append(Item(str(path.resolve())))
    return items


def labelled_items(source: str | Path, *, format: str = "auto", path_column: str = "path", label_column: str = "label",
                   label_level: str = "family", image_root: str | None = None,
                   levels: tuple[str, ...] | None = None) -> list[Item]:
    """The images of a labelled source read as a study reads its data (a folder of class subfolders, a CSV or
    ETHEC manifest). With ``levels`` (a taxonomy's, coarse to fine) the source is read as the study read it
    and each image is labelled at ``label_level``, one of them (None where it is placed above it)."""
    if levels is None:
        spec = DataSpec(str(source), format=format, path_column=path_column, label_column=label_column,
                        label_level=label_level, image_root=image_root)
        return [Item(r.path, r.label) for r in read_records(spec)]
    at = levels.index(label_level)
    spec = DataSpec(str(source), format=format, path_column=path_column, image_root=image_root, levels=levels)
    return [Item(r.path, r.lineage[at] if len(r.lineage) > at else None) for r in read_records(spec)]


def _csv_items(manifest: Path, *, path_column: str, label_column: str, image_root: str | None) -> list[Item]:
    root = Path(image_root) if image_root else manifest.resolve().parent
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if path_column not in columns:
            raise DataError(f"CSV manifest {str(manifest)!r}", f"has no column {path_column!r} (columns: {columns}).",
                            fix=f"Name the column of image paths with {option('path_column')}.")
        labelled = label_column in columns
        rows = [row for row in reader if (row.get(path_column) or "").strip()]
    return [Item(str((root / row[path_column].strip()).resolve()),
                 ((row.get(label_column) or "").strip() or None) if labelled else None) for row in rows]
