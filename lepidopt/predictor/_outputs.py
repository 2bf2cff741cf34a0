"""Predictions written as they come: CSV, JSON lines or Parquet, one row per image, skipped images included."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import numpy as np

from ..errors import MissingExtraError, SettingError
from ..data import Taxonomy, decode_output
from ._predictor import Scored

__all__ = ["PredictionWriter", "PREDICTION_FORMATS", "prediction_format"]

PREDICTION_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


def prediction_format(out: str | Path, given: str | None = None) -> str:
    """The format ``given``, or the one ``out``'s suffix names."""
    if given is not None:
        if given not in PREDICTION_FORMATS.values():
            raise SettingError("output_format", given, f"must be one of {', '.join(PREDICTION_FORMATS.values())}.")
        return given
    suffix = Path(out).suffix.lower()
    if suffix not in PREDICTION_FORMATS:
        raise SettingError("out", str(out), f"ends in {suffix or 'no suffix'}, which names no format; "
                           f"use {', '.join(PREDICTION_FORMATS)}.")
    return PREDICTION_FORMATS[suffix]


class PredictionWriter:
    """Rows of ``path``, ``label`` (when the source has labels), ``error`` (why an image was skipped, else
    empty), ``prediction_1``, ``probability_1`` ... to ``top_k``, and with ``all_probabilities`` a
    ``p:CLASS`` column per class. With ``taxonomy`` (a taxonomy model's), a ``LEVEL`` and ``LEVEL_probability``
    column per level in place of the ranked ones, from the predictions ``decode`` makes (empty below where a
    consistent path ends); its classes are ``level:class``. Written to ``out``.part and renamed to ``out``
    when complete, so a file named ``out`` is never a partial one."""

    def __init__(self, out: str | Path, *, classes: tuple[str, ...], top_k: int = 3, labelled: bool = False,
                 all_probabilities: bool = False, format: str | None = None, taxonomy: Taxonomy | None = None,
                 decode: str = "independent") -> None:
        self.out, self.classes = Path(out), classes
        self.format = prediction_format(out, format)
        self.top_k = 0 if taxonomy is not None else min(top_k, len(classes))
        self.taxonomy, self.decode = taxonomy, decode
        self.all_probabilities, self.labelled = all_probabilities, labelled
        self.columns = ["path", *(["label"] if labelled else []), "error",
                        *(f"{kind}_{rank}" for rank in range(1, self.top_k + 1)
                          for kind in ("prediction", "probability")),
                        *(f"{level}{kind}" for level in (taxonomy.levels if taxonomy else ())
                          for kind in ("", "_probability")),
                        *([f"p:{name}" for name in classes] if all_probabilities else [])]
        self.rows = self.skipped = 0
        self._part = self.out.with_name(self.out.name + ".part")
        self._text: TextIO | None = None
        self._csv: Any = None
        self._parquet: Any = None

    def __enter__(self) -> PredictionWriter:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise MissingExtraError("Parquet output", "needs pyarrow.",
                                        fix="pip install 'lepidopt[parquet]', or write .csv or .jsonl.") from None
        else:
            self._text = self._part.open("w", newline="" if self.format == "csv" else None, encoding="utf-8")
            if self.format == "csv":
                self._csv = csv.DictWriter(self._text, fieldnames=self.columns)
                self._csv.writeheader()
        return self

    def write(self, scored: Scored) -> None:
        rows = self._rows(scored)
        self.rows += len(rows)
        self.skipped += len(scored.skipped)
        if self.format == "csv":
            self._csv.writerows(rows)
        elif self.format == "jsonl":
            assert self._text is not None
            self._text.writelines(json.dumps(row) + "\n" for row in rows)
        else:
            self._write_parquet(rows)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._text is not None:
            self._text.close()
        if self._parquet is not None:
            self._parquet.close()
        if kind is None:
            if self.format == "parquet" and self._parquet is None:  # no batch came: an empty table with its columns
                self._write_parquet([])
                self._parquet.close()  # type: ignore[attr-defined]
            os.replace(self._part, self.out)
        else:
            self._part.unlink(missing_ok=True)

    def _rows(self, scored: Scored) -> list[dict[str, Any]]:
        rows, values = [], iter(scored.values)
        order = np.argsort(-scored.values, axis=1)[:, :self.top_k] if len(scored.values) else None
        if self.taxonomy is not None and len(scored.values):
            tables, paths = decode_output(self.taxonomy, scored.values, self.decode)
        read = 0
        for item, reason in zip(scored.items, scored.reasons):
            row: dict[str, Any] = {"path": item.path, **({"label": item.label} if self.labelled else {}),
                                   "error": reason or ""}
            if reason is None:
                probabilities = next(values)
                assert order is not None
                for rank, index in enumerate(order[read], start=1):
                    row[f"prediction_{rank}"] = self.classes[index]
                    row[f"probability_{rank}"] = float(probabilities[index])
                if self.taxonomy is not None:
                    for level, (name, c) in enumerate(zip(self.taxonomy.levels, paths[read].tolist())):
                        row[name] = self.taxonomy.classes[level][c] if c >= 0 else ""
                        row[f"{name}_probability"] = float(tables[level][read, c]) if c >= 0 else None
                if self.all_probabilities:
                    row.update({f"p:{name}": float(p) for name, p in zip(self.classes, probabilities)})
                read += 1
            rows.append(row)
        return rows

    def _write_parquet(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            fields = [pa.field(name, pa.float32() if name.startswith(("probability_", "p:"))
                               or name.endswith("_probability") else pa.string()) for name in self.columns]
            self._schema = pa.schema(fields)
            self._parquet = pq.ParquetWriter(self._part, self._schema)
        table = pa.Table.from_pylist([{name: row.get(name) for name in self.columns} for row in rows],
                                     schema=self._schema)
        self._parquet.write_table(table)
