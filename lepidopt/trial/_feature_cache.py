"""Backbone features computed once and shared by every trial and worker that reads the same study folder.

Each entry is a float16 ``.npy`` array beside a JSON record of its shape and checksum. One process
computes an entry while the others wait on its lock file and then read it; the array is written to a
temporary file and renamed into place, so a reader never sees half a file, and a file whose checksum
does not match is treated as absent and computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import numpy as np

from .._files import replacing, write_text_atomically
from .._sizes import format_size
from ..errors import StudyError, option, rendered
from ..runs import DEFAULT_FEATURE_CACHE_LIMIT

__all__ = ["FeatureCache", "cache_key"]

_Filled = TypeVar("_Filled", np.ndarray, "np.ndarray | None")

log = logging.getLogger("lepidopt")


def cache_key(**parts: Any) -> str:
    """A short stable name for everything that determines the features."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


class FeatureCache:
    def __init__(self, folder: str | Path, *, limit: int = DEFAULT_FEATURE_CACHE_LIMIT) -> None:
        self.folder = Path(folder)
        self.limit = limit
        self._checked: dict[str, np.ndarray] = {}
        self._warned = False

    def get(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array for ``key`` (read-only float16), computing and storing it if absent.

        When storing it would take the folder past the size limit, the array is computed, used and
        not stored, with a warning (once per process) that says how to make room.
        """
        def fill() -> np.ndarray:
            array = np.asarray(compute(), dtype=np.float16)
            return self._store(key, array) if self._room_for(array.nbytes, key) else array

        return self._get(key, fill)

    def get_streamed(self, key: str, shape: tuple[int, ...],
                     chunks: Callable[[], Iterable[np.ndarray]]) -> np.ndarray | None:
        """Like ``get`` for arrays too large to hold in memory: ``chunks()`` yields consecutive row blocks,
        written straight to disk. None (nothing computed) when the entry would pass the size limit."""
        nbytes = int(np.prod(shape)) * 2

        def fill() -> np.ndarray | None:
            if not self._room_for(nbytes, key):
                return None
            data_path, _ = self._paths(key)
            with replacing(data_path) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
                row = 0
                for chunk in chunks():
                    out[row:row + len(chunk)] = chunk
                    row += len(chunk)
                if row != shape[0]:
                    raise StudyError(f"feature cache entry {key}", f"got {row} rows of {shape[0]}.",
                                     fix=f"Delete the study's cache folder {str(self.folder)!r} and run again.")
                out.flush()
                checksum = _checksum(out)
                del out
            self._write_meta(key, shape, checksum)
            return np.load(data_path, mmap_mode="r")

        return self._get(key, fill)

    def _get(self, key: str, fill: Callable[[], _Filled]) -> np.ndarray | _Filled:
        if key in self._checked:
            return self._checked[key]
        array = self._load(key, quiet=True)
        if array is None:
            from filelock import FileLock

            self.folder.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self._paths(key)[0].with_suffix(".lock"))):
                array = self._load(key)  # another worker may have stored it while this one waited
                if array is None:
                    array = fill()
                    if not isinstance(array, np.memmap):
                        return array  # over the limit: not stored, so not remembered either
        self._checked[key] = array
        return array

    def size(self) -> int:
        """Bytes held by the cache's entries."""
        return sum(p.stat().st_size for p in self.folder.glob("features-*.npy")) if self.folder.exists() else 0

    def _room_for(self, nbytes: int, key: str) -> bool:
        held = self.size()
        if held + nbytes <= self.limit:
            return True
        if not self._warned:
            self._warned = True
            log.warning(rendered(
                "feature cache %s holds %s and its limit is %s, so features %s (%s) are computed for this trial "
                "and not stored; later trials that need them compute them again. Raise "
                f"{option('feature_cache_limit')} (a resumed search may), or delete the features-* files of studies "
                "you no longer run."),
                self.folder, format_size(held), format_size(self.limit), key, format_size(nbytes))
        return False

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"features-{key}.npy", self.folder / f"features-{key}.json"

    def _load(self, key: str, *, quiet: bool = False) -> np.ndarray | None:
        data_path, meta_path = self._paths(key)
        if not data_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(data_path, mmap_mode="r")
            if list(array.shape) == meta["shape"] and _checksum(array) == meta["sha256"]:
                return array
        except (OSError, ValueError, KeyError):
            pass
        if not quiet:  # checked again under the lock, where it is reported once
            log.warning("feature cache entry %s is unreadable or corrupt; computing it again", data_path.name)
        return None

    def _store(self, key: str, array: np.ndarray) -> np.ndarray:
        data_path, _ = self._paths(key)
        with replacing(data_path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array)
        self._write_meta(key, array.shape, _checksum(array))
        return np.load(data_path, mmap_mode="r")

    def _write_meta(self, key: str, shape: tuple[int, ...], checksum: str) -> None:
        write_text_atomically(self._paths(key)[1], json.dumps({"shape": list(shape), "dtype": "float16",
                                                               "sha256": checksum}))


def _checksum(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()
