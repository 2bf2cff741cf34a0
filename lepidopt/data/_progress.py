"""Progress for long work: a bar on a terminal, a few plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Iterable, Iterator, TypeVar

__all__ = ["progress"]

T = TypeVar("T")
log = logging.getLogger("lepidopt")


def progress(items: Iterable[T], *, total: int, desc: str) -> Iterator[T]:
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, unit="img", leave=False)
        return
    every = max(total // 4, 1)
    for i, item in enumerate(items, start=1):
        yield item
        if i % every == 0 or i == total:
            log.info("%s: %d/%d", desc, i, total)
