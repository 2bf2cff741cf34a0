"""The frozen train/val/test assignment of a study, written once to split.json and read by every run."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_text_atomically
from ..errors import DataError
from ._records import SUBSETS, Record
from ._scan import ScanResult

__all__ = ["Split", "make_split", "write_split", "read_split"]

SPLIT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Split:
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray  # int index into classes, one per path
    subsets: tuple[str, ...]
    seed: int
    val_fraction: float
    test_fraction: float
    predefined: bool
    skipped: tuple[dict[str, str], ...] = ()
    dropped_classes: dict[str, int] = dataclasses.field(default_factory=dict)

    def indices(self, subset: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.subsets) if s == subset], dtype=np.int64)

    def fingerprint(self) -> str:
        """Changes when any image file, label or assignment changes (size and modification time)."""
        digest = hashlib.sha256()
        for path, label, subset in zip(self.paths, self.labels, self.subsets):
            stat = os.stat(path)
            digest.update(f"{path}\0{label}\0{subset}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for subset in SUBSETS:
            idx = self.indices(subset)
            per_class = np.bincount(self.labels[idx], minlength=len(self.classes))
            out[subset] = {c: int(n) for c, n in zip(self.classes, per_class)}
        return out


def make_split(scan: ScanResult, *, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15) -> Split:
    """Stratified and seeded; every class gets at least one image in each subset.

    When the source ships its own split (ETHEC's train/val/test JSON), that split is kept as it is.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"split fractions val={val_fraction}, test={test_fraction}: each must lie in (0, 1) and "
            "together leave room for training."
        )
    records = scan.records
    classes = tuple(sorted({r.label for r in records}))
    index = {c: i for i, c in enumerate(classes)}
    predefined = all(r.subset is not None for r in records)
    if predefined:
        subsets = [r.subset for r in records]
    else:
        subsets = _stratified_subsets(records, seed, val_fraction, test_fraction)
    return Split(
        classes=classes,
        paths=tuple(r.path for r in records),
        labels=np.array([index[r.label] for r in records], dtype=np.int64),
        subsets=tuple(subsets),
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        predefined=predefined,
        skipped=tuple({"path": s.path, "reason": s.reason} for s in scan.skipped),
        dropped_classes=dict(scan.dropped_classes),
    )


def _stratified_subsets(records: tuple[Record, ...], seed: int, val_fraction: float, test_fraction: float) -> list[str]:
    rng = np.random.default_rng(seed)
    subsets = ["train"] * len(records)
    by_class: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_class.setdefault(r.label, []).append(i)
    for label in sorted(by_class):
        members = np.array(by_class[label])
        rng.shuffle(members)
        n = len(members)
        n_test = max(1, round(n * test_fraction))
        n_val = max(1, round(n * val_fraction))
        if n - n_test - n_val < 1:
            raise DataError(f"class {label!r}: {n} images cannot fill train, val and test; raise --min-per-class.")
        for i in members[:n_test]:
            subsets[i] = "test"
        for i in members[n_test : n_test + n_val]:
            subsets[i] = "val"
    return subsets


def write_split(split: Split, path: str | Path) -> None:
    path = Path(path)
    data: dict[str, Any] = {
        "version": SPLIT_VERSION,
        "seed": split.seed,
        "val_fraction": split.val_fraction,
        "test_fraction": split.test_fraction,
        "predefined": split.predefined,
        "classes": list(split.classes),
        "counts": split.counts(),
        "items": [
            {"path": p, "label": split.classes[l], "subset": s}
            for p, l, s in zip(split.paths, split.labels.tolist(), split.subsets)
        ],
        "skipped": list(split.skipped),
        "dropped_classes": split.dropped_classes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(data, indent=1))


def read_split(path: str | Path) -> Split:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"split file {str(path)!r}: does not exist.") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"split file {str(path)!r}: is not valid JSON ({exc}); delete it to split again.") from None
    if data.get("version") != SPLIT_VERSION:
        raise DataError(f"split file {str(path)!r}: version {data.get('version')!r}, expected {SPLIT_VERSION}.")
    classes = tuple(data["classes"])
    index = {c: i for i, c in enumerate(classes)}
    items = data["items"]
    missing = [it["path"] for it in items if not os.path.exists(it["path"])]
    if missing:
        raise DataError(
            f"split file {str(path)!r}: {len(missing)} of its images are gone, e.g. {missing[0]!r}. "
            "Restore them, or start a new study to split the data again."
        )
    return Split(
        classes=classes,
        paths=tuple(it["path"] for it in items),
        labels=np.array([index[it["label"]] for it in items], dtype=np.int64),
        subsets=tuple(it["subset"] for it in items),
        seed=data["seed"],
        val_fraction=data["val_fraction"],
        test_fraction=data["test_fraction"],
        predefined=data["predefined"],
        skipped=tuple(data.get("skipped", ())),
        dropped_classes=dict(data.get("dropped_classes", {})),
    )
