"""Checking every image of a source so that no bad file can stop a study."""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from ..errors import DataError, option, rendered
from ._images import problem_with
from ._progress import progress
from ._records import Record
from ._sources import DataSpec, manifest_root, read_records

__all__ = ["ScanResult", "Skipped", "scan_records", "scan_source"]

log = logging.getLogger("lepidopt")
SKIPPED_LINES = 10  # skipped files named one by one in the log; data inspect lists them all


@dataclasses.dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class ScanResult:
    """The usable records, the files skipped with their reasons, and the classes dropped for size."""

    records: tuple[Record, ...]
    skipped: tuple[Skipped, ...]
    dropped_classes: dict[str, int]
    # With taxonomy levels: per level below the coarsest, the classes too small to split and their images, which
    # stay in the study labelled down to the level above.
    unplaced: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    levels: tuple[str, ...] | None = None

    @property
    def class_counts(self) -> dict[str, int]:
        return dict(sorted(collections.Counter(r.label for r in self.records).items()))

    def level_counts(self, level: int) -> dict[str, int]:
        """Images per class of a taxonomy level (0 the coarsest), counting the images placed at that level."""
        return dict(sorted(collections.Counter(r.lineage[level] for r in self.records
                                               if len(r.lineage) > level).items()))

    @property
    def imbalance_ratio(self) -> float:
        counts = self.class_counts.values()
        return max(counts) / min(counts)


def scan_source(spec: DataSpec) -> ScanResult:
    """Read the source's records and check every image, as a study's creation does.

    Args:
        spec: Where the images are and how they are labelled.

    Returns:
        The usable images and their labels, the files skipped with the reason, and the classes dropped
        for having too few images.

    Raises:
        DataError: A source that cannot be read, paths that do not exist, or fewer than two usable classes.
    """
    records = read_records(spec)
    _check_paths_exist(spec, records)
    return scan_records(records, min_size=spec.min_size, min_per_class=spec.min_per_class, source=spec.source,
                        levels=spec.levels)


def _check_paths_exist(spec: DataSpec, records: list[Record]) -> None:
    """A manifest whose paths are missing is most often read against the wrong folder: say so once, not once a
    file, and refuse it when none of its paths exists."""
    missing = [r.path for r in records if not os.path.exists(r.path)]
    if not missing:
        return
    root = manifest_root(spec)
    hint = (f"the paths are read relative to {str(root)!r}; if they are relative to another folder, give it with "
            f"{option('image_root')}")
    if len(missing) == len(records):
        raise DataError(f"data source {spec.source!r}", f"none of the {len(records)} image paths it names exists "
                        f"(e.g. {missing[0]!r}); {hint}.")
    log.warning("%d of the %d image paths in %s do not exist (e.g. %s) and are skipped; %s", len(missing), len(records),
                spec.source, missing[0], rendered(hint))


def scan_records(records: list[Record], *, min_size: int, min_per_class: int, source: str = "data",
                 levels: tuple[str, ...] | None = None) -> ScanResult:
    """Decode every image once; keep the good ones; drop classes too small for a stratified split. With taxonomy
    ``levels``, that applies to the coarsest level; a finer class too small leaves its images placed down to the
    level above, where they still count."""
    if not records:
        raise DataError(f"data source {source!r}", "names no images.")
    workers = min(32, 2 * (os.cpu_count() or 1))
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        problems = list(
            progress(pool.map(lambda r: problem_with(r.path, min_size=min_size), records), total=len(records),
                     desc="scanning images")
        )
    finally:
        pool.shutdown(cancel_futures=True)  # Ctrl-C stops at once, not after the images still queued
    good = [r for r, p in zip(records, problems) if p is None]
    skipped = tuple(Skipped(r.path, p) for r, p in zip(records, problems) if p is not None)
    named = [item for item in skipped if item.reason != "missing file"]  # missing files are counted in one line
    for item in named[:SKIPPED_LINES]:
        log.warning("skipped %s: %s", item.path, item.reason)
    if len(named) > SKIPPED_LINES:
        log.warning("skipped %d more files that cannot be used; lepidopt data inspect lists each with its reason",
                    len(named) - SKIPPED_LINES)
    if not good:
        reasons = collections.Counter(s.reason.split(" (")[0].split(":")[0] for s in skipped)
        raise DataError(
            f"data source {source!r}", f"none of its {len(records)} images can be used "
            f"({', '.join(f'{n} {r}' for r, n in reasons.most_common())}).",
            fix=f"Check the files and {option('min_size')}."
        )
    kept, dropped = _drop_small_classes(good, min_per_class)
    for label, count in dropped.items():
        log.warning(
            rendered(f"dropped class %r: %d usable images, fewer than the %d a stratified split needs "
                     f"({option('min_per_class')})"),
            label, count, min_per_class,
        )
    if len({r.label for r in kept}) < 2:
        raise DataError(
            f"data source {source!r}", f"{len({r.label for r in kept})} class(es) left with at least {min_per_class} "
            f"usable images; a classifier needs 2 or more. Dropped: {dropped or 'none'}.",
            fix=f"Add images or lower {option('min_per_class')}."
        )
    unplaced: dict[str, dict[str, int]] = {}
    if levels is not None:
        kept, unplaced = _place_fine_levels(kept, levels, min_per_class)
        for level, classes in unplaced.items():
            log.warning(rendered(f"%d %s classes have fewer than %d usable images ({option('min_per_class')}), too "
                                 f"few to split; their %d images are learned down to the level above"),
                        len(classes), level, min_per_class, sum(classes.values()))
    return ScanResult(records=tuple(kept), skipped=skipped, dropped_classes=dropped, unplaced=unplaced, levels=levels)


def _place_fine_levels(records: list[Record], levels: tuple[str, ...], min_per_class: int
                       ) -> tuple[list[Record], dict[str, dict[str, int]]]:
    """Level by level below the coarsest, cut each record's lineage above a class with fewer than
    ``min_per_class`` images placed at its level, or none for training."""
    unplaced: dict[str, dict[str, int]] = {}
    for level in range(1, len(levels)):
        placed = [r for r in records if len(r.lineage) > level]
        _, small = _drop_small_classes([dataclasses.replace(r, label=r.lineage[level]) for r in placed],
                                       min_per_class)
        if small:
            unplaced[levels[level]] = small
            records = [dataclasses.replace(r, lineage=r.lineage[:level])
                       if len(r.lineage) > level and r.lineage[level] in small else r for r in records]
    return records, unplaced


def _drop_small_classes(records: list[Record], min_per_class: int) -> tuple[list[Record], dict[str, int]]:
    counts = collections.Counter(r.label for r in records)
    in_train = collections.Counter(r.label for r in records if r.subset in (None, "train"))
    dropped = {
        label: n for label, n in sorted(counts.items()) if n < min_per_class or in_train[label] == 0
    }
    return [r for r in records if r.label not in dropped], dropped
