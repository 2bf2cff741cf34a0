"""Writing a file so that no reader, in this process or another worker's, ever sees half of it."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

__all__ = ["replacing", "replacing_folder", "write_text_atomically"]


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path``, moved over it when the block succeeds.

    The temporary name keeps ``path``'s suffix, for savers that insist on one (np.savez, Keras).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write leaves neither the old file damaged nor a stray temporary
        raise
    os.replace(tmp, path)


def write_text_atomically(path: str | Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def replacing_folder(path: str | Path) -> Iterator[Path]:
    """Yields a new empty folder beside ``path`` that takes its place, whole, when the block succeeds; when it
    fails or is interrupted, the new folder is removed and ``path`` stays as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
