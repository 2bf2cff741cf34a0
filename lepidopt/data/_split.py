"""The frozen train/val/test assignment of a study, written once to split.json and read by every run.

A split is bound to what it was made from: the data settings (source, format, label level, minimum
sizes, ...) and the size and modification time of every image it holds. Reading it checks both, so a
study never trains on other images than the ones its split names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._files import write_text_atomically
from ..errors import DataError, option
from ._records import SUBSETS
from ._scan import ScanResult
from ._sources import DataSpec
from ._taxonomy import Taxonomy

__all__ = ["Split", "make_split", "write_split", "read_split"]

log = logging.getLogger("lepidopt")
SPLIT_VERSION = 2  # 2: the data settings and every image's size and modification time are recorded


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
    data: Mapping[str, Any] | None = None  # the DataSpec it was made from, as a dict (None: not recorded)
    stats: tuple[tuple[int, int], ...] | None = None  # (size in bytes, mtime in ns) of each image when split
    # With taxonomy levels: the tree, and each image's class index at every level (-1 below where it is placed);
    # ``classes`` and ``labels`` are then the coarsest level's.
    taxonomy: Taxonomy | None = None
    lineage: np.ndarray | None = None

    def indices(self, subset: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.subsets) if s == subset], dtype=np.int64)

    def fingerprint(self) -> str:
        """Changes when any image file, label or assignment changes (size and modification time)."""
        digest = hashlib.sha256()
        for path, label, subset in zip(self.paths, self.labels, self.subsets):
            stat = os.stat(path)
            digest.update(f"{path}\0{label}\0{subset}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        if self.lineage is not None:
            digest.update(self.lineage.tobytes())
        return digest.hexdigest()

    def counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for subset in SUBSETS:
            idx = self.indices(subset)
            per_class = np.bincount(self.labels[idx], minlength=len(self.classes))
            out[subset] = {c: int(n) for c, n in zip(self.classes, per_class)}
        return out

    def missing_from(self) -> dict[str, dict[str, int]]:
        """Per taxonomy level, how many of its classes have no image in val and in test (a source's own split
        may leave fine classes out of them); empty without a taxonomy or when every class is in both."""
        if self.taxonomy is None or self.lineage is None:
            return {}
        out = {}
        for level, name in enumerate(self.taxonomy.levels):
            classes = len(self.taxonomy.classes[level])
            counts = {subset: classes - len(set(self.lineage[self.indices(subset), level].tolist()) - {-1})
                      for subset in ("val", "test")}
            if any(counts.values()):
                out[name] = counts
        return out


def make_split(scan: ScanResult, *, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15,
               data: DataSpec | None = None) -> Split:
    """Stratified and seeded; every class gets at least one image in each subset. ``data``: the settings the
    scan read, recorded with every image's size and modification time so the split can be checked later.

    When the source ships its own split (ETHEC's train/val/test JSON), that split is kept as it is.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"split fractions val={val_fraction}, test={test_fraction}", "each must lie in (0, 1) and "
            "together leave room for training."
        )
    records = scan.records
    classes = tuple(sorted({r.label for r in records}))
    index = {c: i for i, c in enumerate(classes)}
    given = [r.subset for r in records if r.subset is not None]
    predefined = len(given) == len(records)  # the source's own train/val/test manifests
    levels = None if data is None else data.levels
    taxonomy = None if levels is None else Taxonomy.from_paths(levels, [r.lineage for r in records],
                                                               names=[f"image {r.path!r}" for r in records])
    for level, names in zip(levels or (), taxonomy.classes if taxonomy else ()):
        if len(names) < 2:
            raise DataError(f"taxonomy level {level!r}", f"has {len(names)} class{'' if len(names) == 1 else 'es'} "
                            "with enough images to split; a level needs two or more to be learned.",
                            fix="Leave the level out of the levels, or lower the minimum images per class.")
    if predefined:
        subsets = given
    else:
        strata = [r.lineage if taxonomy is not None else r.label for r in records]
        subsets = _stratified_subsets(strata, seed, val_fraction, test_fraction, nested=taxonomy is not None)
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
        data=None if data is None else data.to_dict(),
        stats=tuple(_stat(r.path) for r in records),
        taxonomy=taxonomy,
        lineage=None if taxonomy is None else taxonomy.encode([r.lineage for r in records]),
    )


def _stat(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def _stratified_subsets(strata: list[Any], seed: int, val_fraction: float, test_fraction: float, *,
                        nested: bool = False) -> list[str]:
    """Each stratum (a class; with a taxonomy, the images placed down to the same class) split with at least one
    image in each subset. A nested stratum of one or two images (those of a class whose other images lie in
    finer, placed classes, which give the class its val and test images) goes to train first."""
    rng = np.random.default_rng(seed)
    subsets = ["train"] * len(strata)
    by_class: dict[Any, list[int]] = {}
    for i, stratum in enumerate(strata):
        by_class.setdefault(stratum, []).append(i)
    for label in sorted(by_class):
        members = np.array(by_class[label])
        rng.shuffle(members)
        n = len(members)
        if nested and n < 3:
            if n == 2:
                subsets[members[1]] = "val" if rng.random() < val_fraction / (val_fraction + test_fraction) else "test"
            continue
        n_test = max(1, round(n * test_fraction))
        n_val = max(1, round(n * val_fraction))
        if n - n_test - n_val < 1:
            raise DataError(f"class {label!r}", f"{n} images cannot fill train, val and test; raise "
                            f"{option('min_per_class')}.")
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
        "data": None if split.data is None else dict(split.data),
        "items": [
            {"path": p, "label": split.classes[label], "subset": s,
             **({} if st is None else {"size": st[0], "mtime_ns": st[1]}),
             **({} if split.lineage is None else {"lineage": _lineage_labels(split, i)})}
            for i, (p, label, s, st) in enumerate(zip(split.paths, split.labels.tolist(), split.subsets,
                                                      split.stats or [None] * len(split.paths)))
        ],
        **({} if split.taxonomy is None else {"taxonomy": split.taxonomy.to_dict()}),
        "skipped": list(split.skipped),
        "dropped_classes": split.dropped_classes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(data, indent=1))


def _lineage_labels(split: Split, i: int) -> list[str]:
    assert split.taxonomy is not None and split.lineage is not None
    return [split.taxonomy.classes[level][c] for level, c in enumerate(split.lineage[i].tolist()) if c >= 0]


def read_split(path: str | Path, *, data: DataSpec | None = None) -> Split:
    """The split in ``path``, checked: every image is still there, unchanged since the split was made, and,
    given ``data``, the split was made from those data settings. Raises DataError naming what differs."""
    path = Path(path)
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"split file {str(path)!r}", "does not exist.") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"split file {str(path)!r}", f"is not valid JSON ({exc}); delete it to split again.") from None
    if saved.get("version") not in (1, SPLIT_VERSION):
        raise DataError(f"split file {str(path)!r}", f"version {saved.get('version')!r}, expected {SPLIT_VERSION}.")
    if data is not None:
        _check_made_from(path, saved.get("data"), data.to_dict())
    classes = tuple(saved["classes"])
    index = {c: i for i, c in enumerate(classes)}
    items = saved["items"]
    _check_images(path, items)
    taxonomy = Taxonomy.from_dict(saved["taxonomy"]) if "taxonomy" in saved else None
    return Split(
        classes=classes,
        paths=tuple(it["path"] for it in items),
        labels=np.array([index[it["label"]] for it in items], dtype=np.int64),
        subsets=tuple(it["subset"] for it in items),
        seed=saved["seed"],
        val_fraction=saved["val_fraction"],
        test_fraction=saved["test_fraction"],
        predefined=saved["predefined"],
        skipped=tuple(saved.get("skipped", ())),
        dropped_classes=dict(saved.get("dropped_classes", {})),
        data=saved.get("data"),
        stats=tuple((it["size"], it["mtime_ns"]) for it in items) if items and "size" in items[0] else None,
        taxonomy=taxonomy,
        lineage=None if taxonomy is None else taxonomy.encode([it["lineage"] for it in items]),
    )


def _check_made_from(path: Path, recorded: Mapping[str, Any] | None, given: Mapping[str, Any]) -> None:
    if recorded is None:
        log.warning("split file %s was written by an earlier lepidopt and does not record its data settings; it is "
                    "used as it is", path)
        return
    if dict(recorded) == dict(given):
        return
    if recorded.get("source") != given.get("source"):
        what = f"was made from {recorded.get('source')}, not from {given.get('source')}, the data the study names"
    else:
        differences = [f"{k} {recorded.get(k)!r}, not {given.get(k)!r}" for k in given
                       if recorded.get(k) != given.get(k)]
        what = f"was made from {recorded.get('source')} read with {'; '.join(differences)}"
    raise DataError(
        f"split file {str(path)!r}", f"{what}.",
        fix=f"A study trains only on the split it was created with: start a new {option('study')} for this data, "
            f"or delete this study (the folder {str(path.parent)!r}, and the study in its storage when that is not the "
            "folder's study.db) to create it again."
    )


def _check_images(path: Path, items: list[dict[str, Any]]) -> None:
    missing, changed = [], []
    for item in items:
        try:
            stat = os.stat(item["path"])
        except FileNotFoundError:
            missing.append(item["path"])
            continue
        if "size" in item and (stat.st_size, stat.st_mtime_ns) != (item["size"], item["mtime_ns"]):
            changed.append((item, stat))
    if missing:
        raise DataError(
            f"split file {str(path)!r}", f"{len(missing)} of its {len(items)} images are gone, e.g. {missing[0]!r}.",
            fix="Restore them, or start a new study to split the data again."
        )
    if changed:
        item, stat = changed[0]
        what = (f"{item['size']} bytes then, {stat.st_size} now" if stat.st_size != item["size"]
                else "the same size, modified since")
        raise DataError(
            f"split file {str(path)!r}", f"{len(changed)} of its {len(items)} images changed since the split was "
            f"made, e.g. {item['path']!r} ({what}); the study's trials were trained on the images as they were.",
            fix=f"Restore them, or start a new {option('study')} to split the changed data."
        )
