"""A labelled image as every source yields it."""

from __future__ import annotations

import dataclasses

__all__ = ["Record", "SUBSETS"]

SUBSETS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Record:
    """``label`` is the class a single-level study learns; with taxonomy levels it is the coarsest level's, and
    ``lineage`` holds one label per level, coarse to fine, as far down as the record is placed (a scan leaves a
    record unplaced below a level whose class is too small to split)."""

    path: str
    label: str
    subset: str | None = None  # set only when the source ships its own split
    lineage: tuple[str, ...] = ()
