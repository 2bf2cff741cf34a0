"""The labels a user gives beside embeddings: a .npy array, a .txt file with one label per line, or a .csv
file with or without a header, read with a real CSV parser."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import ReportError, SettingError, option

__all__ = ["load_labels"]


def load_labels(path: str | Path, *, n_points: int, column: str | None = None) -> np.ndarray:
    """One label per embedding from ``path``. A CSV file has a header when it holds one row more than there are
    points; ``column`` picks its column by name (with a header) or by position counted from 1, and may be left
    out when the file has one column or a column named 'label'."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"labels file {str(path)!r}", "does not exist.")
    suffix = path.suffix.lower()
    if column is not None and suffix != ".csv":
        raise SettingError("label_column", column,
                           f"picks a column of a .csv labels file, and {path.name!r} is not one.")
    if suffix == ".npy":
        try:
            labels = np.load(path, allow_pickle=False).ravel()
        except ValueError as exc:
            raise ReportError(f"labels file {str(path)!r}", f"is not a NumPy .npy array ({exc}).") from None
    elif suffix == ".csv":
        labels = _csv_column(path, n_points=n_points, column=column)
    else:
        labels = np.array([line.strip() for line in path.read_text().splitlines() if line.strip()])
    if len(labels) != n_points:
        raise ReportError(f"labels file {str(path)!r}", f"holds {len(labels)} labels for {n_points} embeddings; give "
                          "one label per embedding, in the same order.")
    return labels


def _csv_column(path: Path, *, n_points: int, column: str | None) -> np.ndarray:
    with path.open(newline="", encoding="utf-8-sig") as handle:  # utf-8-sig: a spreadsheet's byte-order mark
        rows = list(csv.reader(handle))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    blank = [i + 1 for i, row in enumerate(rows) if not any(cell.strip() for cell in row)]
    if blank:
        raise ReportError(f"labels file {str(path)!r}", f"line {blank[0]} is empty; give one label per line, in the "
                          "order of the embeddings.")
    if not rows:
        raise ReportError(f"labels file {str(path)!r}", "is empty; give one label per embedding.")
    if len(rows) not in (n_points, n_points + 1):
        raise ReportError(f"labels file {str(path)!r}", f"has {len(rows)} rows for {n_points} embeddings; give one "
                          "row per embedding, in the same order, after at most one header line.")
    header = [cell.strip() for cell in rows[0]] if len(rows) == n_points + 1 else None
    body = rows[1:] if header else rows
    width = len(rows[0])
    index = _column_index(path, header, width, column)
    short = [i + (2 if header else 1) for i, row in enumerate(body) if len(row) <= index]
    if short:
        raise ReportError(f"labels file {str(path)!r}", f"line {short[0]} has no column {index + 1}; give every line "
                          "the same columns.")
    labels = [row[index].strip() for row in body]
    if header and header[index] in labels:
        raise ReportError(f"labels file {str(path)!r}", f"has {len(rows)} rows for {n_points} embeddings, and its "
                          f"first row, {header[index]!r}, is a label of later rows too, so it is not a header: one row "
                          "too many.", fix="Give one row per embedding, after at most one header line.")
    return np.array(labels)


def _column_index(path: Path, header: list[str] | None, width: int, column: str | None) -> int:
    if column is not None:
        if header and column in header:
            return header.index(column)
        if column.isdigit() and 1 <= int(column) <= width:
            return int(column) - 1
        named = f"its header names {header}" if header else "it has no header"
        raise SettingError("label_column", column, f"{path.name!r} has {width} columns and {named}; give a column "
                           f"name from the header or a position from 1 to {width}.")
    if width == 1:
        return 0
    if header and "label" in header:
        return header.index("label")
    named = f"named {header}" if header else "without a header"
    raise ReportError(f"labels file {str(path)!r}", f"has {width} columns ({named}); say which holds the labels with "
                      f"{option('label_column')} (a column's name, or its position counted from 1).")
