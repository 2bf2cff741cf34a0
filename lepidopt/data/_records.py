"""A labelled image as every source yields it."""

from __future__ import annotations

import dataclasses

__all__ = ["Record", "SUBSETS"]

SUBSETS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Record:
    path: str
    label: str
    subset: str | None = None  # set only when the source ships its own split
