"""A collection's taxonomy: its levels, coarse to fine (family, subfamily, genus, species), the classes of
each level and the tree they form, checked so that every class has one parent; and what the tree says of
predictions: which paths are real, the best real path for per-level probabilities, and how far a
mistake is from the truth."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError

__all__ = ["Taxonomy", "decode_independent", "decode_consistent", "consistent_share", "mistake_severity",
           "hierarchical_distance", "decode_output", "level_tables"]

_SHOWN = 3  # records named per parent in a two-parents error


@dataclasses.dataclass(frozen=True)
class Taxonomy:
    """``levels`` coarse to fine; ``classes[l]`` the sorted class names of level l; ``parents[l][c]`` the index at
    level l - 1 of class c of level l (level 0 has no parents: -1). A class above the finest level may have no
    children (its images are too few to split at the level below): a path of the tree may end there."""

    levels: tuple[str, ...]
    classes: tuple[tuple[str, ...], ...]
    parents: tuple[tuple[int, ...], ...]

    @classmethod
    def from_paths(cls, levels: Sequence[str], paths: Sequence[Sequence[str]], *,
                   names: Sequence[str] | None = None) -> Taxonomy:
        """The tree of ``paths`` (one label per level, coarse to fine, per record, or the first labels of it;
        ``names`` name the records in errors). A class under two parents is a DataError that names both parents
        and records of each: the tree would otherwise merge two different classes that happen to share a name."""
        levels = tuple(levels)
        if len(levels) < 2 or len(set(levels)) != len(levels):
            raise DataError(f"taxonomy levels {list(levels)}", "need two or more distinct levels, coarse to fine.")
        names = list(names) if names is not None else [f"record {i}" for i in range(len(paths))]
        for name, path in zip(names, paths):
            if not 1 <= len(path) <= len(levels) or not all(isinstance(label, str) and label for label in path):
                raise DataError(name, f"has labels {list(path)}; a taxonomy needs one non-empty label for each of "
                                f"{', '.join(levels)}.")
        classes = tuple(tuple(sorted({path[level] for path in paths if len(path) > level}))
                        for level in range(len(levels)))
        parents: list[tuple[int, ...]] = [tuple(-1 for _ in classes[0])]
        for level in range(1, len(levels)):
            seen: dict[str, dict[str, list[str]]] = {}
            for name, path in zip(names, paths):
                if len(path) > level:
                    seen.setdefault(path[level], {}).setdefault(path[level - 1], []).append(name)
            _refuse_two_parents(levels, level, seen)
            index = {label: i for i, label in enumerate(classes[level - 1])}
            parents.append(tuple(index[next(iter(seen[label]))] for label in classes[level]))
        return cls(levels=levels, classes=classes, parents=tuple(parents))

    @property
    def leaf_paths(self) -> np.ndarray:
        """Every root-to-leaf path as class indices (a row per class without children), -1 below a path that
        ends above the finest level."""
        depth = len(self.levels)
        rows = []
        for level in range(depth):
            with_children = set(self.parents[level + 1]) if level + 1 < depth else set()
            rows += [self._path_to(level, c) for c in range(len(self.classes[level])) if c not in with_children]
        return np.array(rows, dtype=np.int64).reshape(len(rows), depth)

    def _path_to(self, level: int, index: int) -> list[int]:
        path = [-1] * len(self.levels)
        for up in range(level, -1, -1):
            path[up] = index
            index = self.parents[up][index]
        return path

    def encode(self, paths: Sequence[Sequence[str]]) -> np.ndarray:
        """Label paths (or their first labels) as class indices (n, levels), -1 below where a path ends."""
        index = [{label: i for i, label in enumerate(names)} for names in self.classes]
        depth = len(self.levels)
        return np.array([[index[level][label] for level, label in enumerate(path)] + [-1] * (depth - len(path))
                         for path in paths], dtype=np.int64).reshape(len(paths), depth)

    def to_dict(self) -> dict[str, Any]:
        return {"levels": list(self.levels), "classes": [list(c) for c in self.classes],
                "parents": [list(p) for p in self.parents]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Taxonomy:
        return cls(levels=tuple(data["levels"]), classes=tuple(tuple(c) for c in data["classes"]),
                   parents=tuple(tuple(int(i) for i in p) for p in data["parents"]))


def _refuse_two_parents(levels: tuple[str, ...], level: int, seen: Mapping[str, Mapping[str, list[str]]]) -> None:
    doubled = {label: by_parent for label, by_parent in seen.items() if len(by_parent) > 1}
    if not doubled:
        return
    label, by_parent = sorted(doubled.items())[0]
    where = "; ".join(f"under {levels[level - 1]} {parent!r} in {', '.join(records[:_SHOWN])}"
                      f"{f' and {len(records) - _SHOWN} more' if len(records) > _SHOWN else ''}"
                      for parent, records in sorted(by_parent.items()))
    others = len(doubled) - 1
    more = f" ({others} other {levels[level]} {'class has' if others == 1 else 'classes have'} two parents too)" \
        if others else ""
    raise DataError(f"{levels[level]} {label!r}", f"has two parents: {where}{more}; a taxonomy is a tree, so each "
                    f"{levels[level]} belongs to one {levels[level - 1]}.",
                    fix=f"Correct the records' {levels[level - 1]}, or rename one of the two {label!r} classes.")


def decode_independent(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """Each level's own most probable class: (n, levels) indices, which need not form a path of the tree."""
    return np.stack([np.argmax(p, axis=1) for p in probabilities], axis=1)


def decode_consistent(taxonomy: Taxonomy, probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """The root-to-leaf path with the highest joint score, so every prediction is a real path of the tree:
    (n, levels) indices, -1 below a path that ends early. The score is the mean over the path's levels of each
    class's log probability: for paths down to the finest level that is the joint log probability over the
    number of levels, and a path that ends early is not favoured for having fewer terms."""
    paths = taxonomy.leaf_paths
    placed = paths >= 0
    total = sum(np.where(placed[:, level], np.log(np.clip(p, 1e-12, 1.0))[:, np.maximum(paths[:, level], 0)], 0.0)
                for level, p in enumerate(probabilities))
    return paths[np.argmax(total / placed.sum(axis=1), axis=1)]


def consistent_share(taxonomy: Taxonomy, predicted: np.ndarray) -> float:
    """The share of predicted paths that are paths of the tree."""
    if len(predicted) == 0:
        return float("nan")
    real = {tuple(path) for path in taxonomy.leaf_paths.tolist()}
    return float(np.mean([tuple(row) in real for row in predicted.tolist()]))


def mistake_severity(true: np.ndarray, predicted: np.ndarray) -> float:
    """The mean height of the lowest common ancestor of the true and predicted path over the mistakes (the
    predictions whose path differs from the truth at some level where the truth is placed), as Bertinetto et
    al., "Making Better Mistakes" (CVPR 2020): a wrong finest class under the right parent is 1, a wrong
    coarsest class is the number of levels. 0 when there is no mistake, so that a study can minimise it."""
    heights = _lca_heights(true, predicted)
    mistakes = heights > 0
    return float(heights[mistakes].mean()) if mistakes.any() else 0.0


def hierarchical_distance(true: np.ndarray, predicted: np.ndarray) -> float:
    """The mean height of the lowest common ancestor of the true and predicted path over every prediction, 0 for
    a right one (Bertinetto et al.'s average hierarchical distance of the top prediction): unlike the mistake
    severity, it does not fall when shallow mistakes are added to deep ones."""
    return float(_lca_heights(true, predicted).mean()) if len(true) else float("nan")


def _lca_heights(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    wrong = true != predicted
    wrong &= true >= 0  # a level where the truth is not placed is neither right nor wrong
    mistakes = wrong.any(axis=1)
    return np.where(mistakes, true.shape[1] - np.argmax(wrong, axis=1), 0)


def decode_output(taxonomy: Taxonomy, probabilities: np.ndarray, decode: str) -> tuple[list[np.ndarray], np.ndarray]:
    """A taxonomy model's output (every level's probabilities side by side) as one table per level, and its
    predictions (n, levels) decoded independently per level or as the most probable paths of the tree (-1 below
    where a path ends). Output that is not finite is decoded level by level: no path can be ranked."""
    tables = level_tables(probabilities, [len(c) for c in taxonomy.classes])
    if decode == "consistent" and np.all(np.isfinite(probabilities)):
        return tables, decode_consistent(taxonomy, tables)
    return tables, decode_independent(tables)


def level_tables(outputs: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """A taxonomy model's output (every level's columns side by side, ``sizes`` of them per level) as one table
    per level."""
    return np.split(np.asarray(outputs), np.cumsum(sizes)[:-1], axis=1)
