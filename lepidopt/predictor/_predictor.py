"""A model the search found, loaded from its .keras file alone: probabilities, labels and embeddings of any
images, and its metrics on any labelled source."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Sequence

import numpy as np

from .._numbers import whole_number
from ..data import DataSpec, Taxonomy, decode_output, read_resized
from ..errors import DataError, ModelError, SettingError, StudyError, command, option
from ..runs import study_dir
from ._card import ModelCard, card_from_json, read_card
from ._formats import FORMAT_FILES, ONNX_CARD_KEY
from ._inputs import Item, items_of, labelled_items
from ._metrics import classification_metrics
from ._runners import KerasRunner, LiteRTRunner, OnnxRunner, Runner, SavedModelRunner, format_of

__all__ = ["Predictor", "Scored", "load_model", "MODEL_FILE", "check_batch_size", "collected"]

MODEL_FILE = FORMAT_FILES["keras"]  # in a study's best/ folder, as export writes it


@dataclasses.dataclass(frozen=True)
class Scored:
    """One batch of a stream: its items in order, why each could not be used (None for those read), and the
    values (probabilities or embeddings) of those read, one row each in the same order."""

    items: list[Item]
    reasons: list[str | None]
    values: np.ndarray

    @property
    def read(self) -> list[Item]:
        return [item for item, reason in zip(self.items, self.reasons) if reason is None]

    @property
    def skipped(self) -> list[tuple[Item, str]]:
        return [(item, reason) for item, reason in zip(self.items, self.reasons) if reason is not None]


class Predictor:
    """A model and its card. Paths are decoded and squashed to the model's square input with Pillow, exactly
    as the study decoded its images; arrays (uint8 or float in [0, 255], any size) go to the model as they are
    and are resized inside it.

    Example::

        model = lepidopt.load_model(study="demo")
        model.classes                      # ('Hesperiidae', 'Lycaenidae', ...)
        model.predict(["a.jpg", "b.png"])  # ['Lycaenidae', 'Pieridae']
        model.predict_proba(images)        # (n, len(model.classes)) float32
        model.embed("drawer-17/")          # (n, d) penultimate-layer features
        model.evaluate("labelled/")        # accuracy, balanced accuracy, F1, per class, confusion
    """

    def __init__(self, runner: Runner, card: ModelCard, path: Path) -> None:
        self.runner, self.card, self.path = runner, card, path

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    @property
    def image_size(self) -> int:
        return self.card.image_size

    @property
    def taxonomy(self) -> Taxonomy | None:
        """A taxonomy model's tree (its levels, classes and parents); None for a single-label model."""
        return None if self.card.taxonomy is None else Taxonomy.from_dict(self.card.taxonomy)

    def levels_of(self, probabilities: np.ndarray) -> list[dict[str, tuple[str, float]]]:
        """A taxonomy model's predictions, decoded as its card says: for each image, each level's class and that
        class's probability (a consistent path may end above the finest level: the levels below are left out)."""
        taxonomy = self.taxonomy
        if taxonomy is None:
            raise ModelError(f"model {str(self.path)!r}", "predicts one label, not taxonomy levels.",
                             fix="Use predict or predict_proba.")
        tables, paths = decode_output(taxonomy, probabilities, self.card.decode)
        return [{level: (taxonomy.classes[i][c], float(tables[i][row, c]))
                 for i, (level, c) in enumerate(zip(taxonomy.levels, path)) if c >= 0}
                for row, path in enumerate(paths.tolist())]

    @property
    def min_size(self) -> int:
        """Images with a shorter side below this are skipped, as the study's scan skipped them."""
        return int(self.card.data.get("min_size", DataSpec.min_size))

    def predict_proba(self, images: Any, *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities, one row per image, columns in the order of :attr:`classes`."""
        return self._values(images, batch_size=batch_size, embeddings=False)

    def predict(self, images: Any, *, batch_size: int = 64) -> list[str]:
        """The most probable class of each image; for a taxonomy model, the finest class of its decoded path
        (:meth:`levels_of` gives every level's)."""
        probabilities = self.predict_proba(images, batch_size=batch_size)
        if self.card.taxonomy is not None:
            return [list(levels.values())[-1][0] for levels in self.levels_of(probabilities)]
        return [self.classes[i] for i in probabilities.argmax(axis=1)]

    def embed(self, images: Any, *, batch_size: int = 64) -> np.ndarray:
        """The penultimate layer's output, one row per image (what ``lepidopt report`` clusters)."""
        return self._values(images, batch_size=batch_size, embeddings=True)

    def evaluate(self, source: str | Path, *, format: str = "auto", label_level: str | None = None,
                 path_column: str = "path", label_column: str = "label", image_root: str | None = None,
                 batch_size: int = 64) -> dict[str, Any]:
        """The metrics export writes for the test split, on a labelled source (a folder of class subfolders, a
        CSV or an ETHEC manifest). Images whose label the model does not know are counted by label and left
        out of the metrics; unreadable images are listed with the reason. A taxonomy model is scored at one of
        its levels (``label_level``, default the coarsest) on its decoded predictions, the source read with the
        model's levels as its study read them (an ETHEC manifest's ranks, a CSV's columns named after the levels,
        nested class folders); images placed above that level are counted and left out."""
        taxonomy = self.taxonomy
        if taxonomy is None:
            level = label_level or str(self.card.data.get("label_level", DataSpec.label_level))
            classes = list(self.classes)
        else:
            level = label_level or taxonomy.levels[0]
            if level not in taxonomy.levels:
                raise SettingError("label_level", level, f"is not a level of the model; its levels are "
                                   f"{', '.join(taxonomy.levels)}.", fix="Name one of them.")
            classes = list(taxonomy.classes[taxonomy.levels.index(level)])
        items = labelled_items(source, format=format, path_column=path_column, label_column=label_column,
                               label_level=level, image_root=image_root,
                               levels=None if taxonomy is None else taxonomy.levels)
        unplaced = 0 if taxonomy is None else sum(item.label is None for item in items)
        if taxonomy is not None:
            items = [item for item in items if item.label is not None]
        index = {name: i for i, name in enumerate(classes)}
        unknown = collections.Counter(str(item.label) for item in items if item.label not in index)
        known = [item for item in items if item.label in index]
        if not known:
            raise DataError(f"source {str(source)!r}", f"none of its {len(items)} images has a label the model "
                            f"knows: it has {sorted(unknown)[:10]}, the model {classes[:10]}.",
                            fix=f"Check {option('label_level')} or {option('label_column')}.")
        probabilities, read, skipped = collected(self.stream(known, batch_size=batch_size))
        if probabilities is None:
            raise DataError(f"source {str(source)!r}", f"none of its {len(known)} images can be read "
                            f"({_listed(skipped)}).", fix="Check the files.")
        labels = np.array([index[str(item.label)] for item in read])
        if taxonomy is None:
            metrics = classification_metrics(labels, probabilities, classes)
        else:
            at = taxonomy.levels.index(level)
            tables, paths = decode_output(taxonomy, probabilities, self.card.decode)
            metrics = {**classification_metrics(labels, tables[at], classes, paths[:, at]),
                       "decode": self.card.decode}
        return {"source": str(source), "label_level": level, "n_images_in_source": len(items) + unplaced, **metrics,
                **({"n_placed_above_level": unplaced} if taxonomy is not None else {}),
                "unknown_labels": dict(unknown.most_common()),
                "skipped": [{"path": item.path, "reason": reason} for item, reason in skipped]}

    def stream(self, items: Sequence[Item], *, batch_size: int = 64,
               embeddings: bool = False) -> Generator[Scored, None, None]:
        """``items`` in batches of ``batch_size``: decoded by two threads while the model works on the batch
        before, so memory holds two batches whatever the number of images."""
        check_batch_size(batch_size)
        chunks = [items[start:start + batch_size] for start in range(0, len(items), batch_size)]
        with ThreadPoolExecutor(max_workers=2) as decoder, ThreadPoolExecutor(max_workers=1) as ahead:
            def decode(chunk: Sequence[Item]) -> list[tuple[np.ndarray | None, str | None]]:
                return list(decoder.map(lambda item: read_resized(item.path, self.image_size,
                                                                  min_size=self.min_size), chunk))

            pending: Future[list[tuple[np.ndarray | None, str | None]]] | None = None
            for position, chunk in enumerate(chunks):
                decoded = pending.result() if pending is not None else decode(chunk)
                pending = ahead.submit(decode, chunks[position + 1]) if position + 1 < len(chunks) else None
                arrays = [array for array, _ in decoded if array is not None]
                values = (self._run(np.stack(arrays), embeddings=embeddings) if arrays
                          else np.zeros((0, 0), np.float32))  # a batch of unreadable files: no rows
                yield Scored(items=list(chunk), reasons=[reason for _, reason in decoded], values=values)

    def _run(self, batch: np.ndarray, *, embeddings: bool) -> np.ndarray:
        batch = batch.astype(np.float32, copy=False)
        return self.runner.embeddings(batch) if embeddings else self.runner.probabilities(batch)

    def _values(self, images: Any, *, batch_size: int, embeddings: bool) -> np.ndarray:
        check_batch_size(batch_size)
        if isinstance(images, np.ndarray):
            batch = images[None] if images.ndim == 3 else images
            if batch.ndim != 4 or batch.shape[-1] != 3:
                raise SettingError("images", f"array of shape {images.shape}", "must be one image (height, width, 3) "
                                   "or a batch (n, height, width, 3) of RGB pixels in [0, 255].")
            return np.concatenate([self._run(batch[i:i + batch_size], embeddings=embeddings)
                                   for i in range(0, len(batch), batch_size)] or [np.zeros((0, 0), np.float32)])
        sources = [images] if isinstance(images, (str, Path)) else list(images)
        items = items_of(sources)
        with contextlib.closing(self.stream(items, batch_size=batch_size, embeddings=embeddings)) as batches:
            values, _, skipped = collected(batches)
        if skipped:
            raise DataError(f"{len(skipped)} of {len(items)} images", f"cannot be used ({_listed(skipped)}).",
                            fix="Remove them, or use Predictor.stream, which skips them and says why.")
        return values if values is not None else np.zeros((0, len(self.classes)), np.float32)


def load_model(path: str | Path | None = None, *, study: str | None = None,
               results_dir: str | Path = "results") -> Predictor:
    """The model ``lepidopt export`` wrote, ready to use: from ``path`` (model.keras or the folder holding it,
    model.onnx, model.tflite or the model.savedmodel folder), or from a study's ``best/model.keras``. Needs
    neither the study's storage nor its data; an ONNX model runs on onnxruntime without TensorFlow.

    Args:
        path: A model written by export (or copied anywhere): .keras, .onnx, .tflite or a SavedModel folder.
        study: Instead of ``path``: the study whose ``best/model.keras`` to load.
        results_dir: With ``study``: where the study's folder is.

    Returns:
        A :class:`Predictor`: ``.predict``, ``.predict_proba``, ``.embed``, ``.evaluate``, ``.classes``, ``.card``.

    Raises:
        SettingError: Both or neither of ``path`` and ``study``.
        StudyError: The study has no exported model.
        ModelError: A file that is not a model lepidopt exported.
    """
    if (path is None) == (study is None):
        raise SettingError("path", path, "needs a model file or a study, one of the two" +
                           (f", not both (study {study!r})." if path else "."),
                           fix=f"Pass {option('path')} or {option('study')}.")
    if study is not None:
        file = study_dir(results_dir, study) / "best" / MODEL_FILE
        if not file.is_file():
            raise StudyError(f"study {study!r}", f"has no exported model {str(file)!r}.",
                             fix=f"Export its best trial first: {command('export', 'study', function='export_best')}"
                                 f", or check {option('results_dir')}.")
    else:
        file = Path(path)  # type: ignore[arg-type]
        if file.is_dir() and not (file / "saved_model.pb").is_file():
            file = file / MODEL_FILE
    return Predictor(*_opened(file), file)


def _opened(path: Path) -> tuple[Runner, ModelCard]:
    fmt = format_of(path) if path.exists() else "keras"
    if fmt == "onnx":
        runner = OnnxRunner(path)
        metadata = runner.metadata()
        if ONNX_CARD_KEY not in metadata:
            raise ModelError(f"model {str(path)!r}", f"carries no card in its metadata (key {ONNX_CARD_KEY!r}), so its "
                             "classes and input size are unknown: it was not exported by lepidopt.",
                             fix="Export the study with "
                                 f"{command('export', 'study', 'formats', function='export_best')}.")
        return runner, card_from_json(metadata[ONNX_CARD_KEY], where=f"model {str(path)!r}")
    card = read_card(path)
    runners: dict[str, Callable[[Path], Runner]] = {"keras": KerasRunner, "savedmodel": SavedModelRunner,
                                                    "litert": LiteRTRunner}
    return runners[fmt](path), card


def collected(batches: Iterable[Scored]) -> tuple[np.ndarray | None, list[Item], list[tuple[Item, str]]]:
    """A stream gathered: the values of every image read (None when none was), those images, and the images
    skipped with their reasons."""
    rows, read, skipped = [], [], []
    for scored in batches:
        rows += [scored.values] if len(scored.values) else []
        read += scored.read
        skipped += scored.skipped
    return (np.concatenate(rows) if rows else None), read, skipped


def check_batch_size(batch_size: int) -> None:
    if not whole_number(batch_size, at_least=1):
        raise SettingError("batch_size", batch_size, "must be a whole number, at least 1.")


def _listed(skipped: Sequence[tuple[Item, str]]) -> str:
    more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    return "; ".join(f"{item.path!r}: {reason}" for item, reason in skipped[:5]) + more
