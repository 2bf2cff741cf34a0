"""Backbone features computed once and shared by every trial and worker that reads the same study folder.

Each entry is a float16 ``.npy`` array beside a JSON record of its shape and checksum. Writes go to a
temporary file first and are renamed into place, so a reader never sees half a file; a file whose
checksum does not match is treated as absent and computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._files import replacing, write_text_atomically

__all__ = ["FeatureCache", "cache_key"]

log = logging.getLogger("lepidopt")


def cache_key(**parts: Any) -> str:
    """A short stable name for everything that determines the features."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


class FeatureCache:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._checked: dict[str, np.ndarray] = {}

    def get(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array for ``key`` (read-only float16 memory map), computing and storing it if absent."""
        if key in self._checked:
            return self._checked[key]
        array = self._load(key)
        if array is None:
            array = self._store(key, np.asarray(compute(), dtype=np.float16))
        self._checked[key] = array
        return array

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"features-{key}.npy", self.folder / f"features-{key}.json"

    def _load(self, key: str) -> np.ndarray | None:
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
        log.warning("feature cache entry %s is unreadable or corrupt; computing it again", data_path.name)
        return None

    def _store(self, key: str, array: np.ndarray) -> np.ndarray:
        self.folder.mkdir(parents=True, exist_ok=True)
        data_path, meta_path = self._paths(key)
        with replacing(data_path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array)
        write_text_atomically(meta_path, json.dumps({"shape": list(array.shape), "dtype": "float16",
                                                     "sha256": _checksum(array)}))
        return np.load(data_path, mmap_mode="r")


def _checksum(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()
