"""What ``lepidopt predict`` and ``lepidopt embed`` write: predictions streamed to a table, embeddings beside
their paths and labels in the form ``lepidopt report --embeddings`` reads."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
from pathlib import Path
from typing import Any, Generator, Sequence

import numpy as np

from .._files import replacing
from .._numbers import whole_number
from ..data import progress
from ..errors import DataError, SettingError
from ._inputs import Item
from ._outputs import PredictionWriter, prediction_format
from ._predictor import Predictor, Scored, check_batch_size, collected

__all__ = ["WrittenPredictions", "write_predictions", "write_embeddings", "EMBEDDING_SUFFIXES", "beside_npy",
           "check_prediction_settings", "check_embedding_settings"]

log = logging.getLogger("lepidopt")
EMBEDDING_SUFFIXES = (".npz", ".npy")


@dataclasses.dataclass(frozen=True)
class WrittenPredictions:
    out: Path
    images: int
    skipped: list[tuple[Item, str]]


def write_predictions(model: Predictor, items: Sequence[Item], *, out: str | Path, top_k: int = 3,
                      all_probabilities: bool = False, output_format: str | None = None,
                      batch_size: int = 64) -> WrittenPredictions:
    """One row per item in ``out`` (see :class:`PredictionWriter`), written batch by batch; a skipped image
    is a row with its reason and a warning, never a stop.

    Args:
        model: The model to predict with (:func:`load_model`).
        items: The images, as :func:`items_of` lists them.
        out: The table to write: .csv, .jsonl or .parquet (written to OUT.part, renamed when complete).
        top_k: Labels per image, most probable first.
        all_probabilities: Also a ``p:CLASS`` column for every class.
        output_format: csv, jsonl or parquet, instead of the one ``out``'s suffix names.
        batch_size: Images per batch.

    Returns:
        The file written, the number of images classified and the items skipped with their reasons.

    Raises:
        SettingError: A ``top_k``, ``batch_size``, ``out`` or ``output_format`` that cannot be used.
        MissingExtraError: Parquet without pyarrow.
        DataError: None of the images could be read (the file is still written, with every reason).
    """
    check_prediction_settings(out=out, top_k=top_k, output_format=output_format, batch_size=batch_size)
    _refuse_no_items(items)
    labelled = any(item.label is not None for item in items)
    skipped: list[tuple[Item, str]] = []
    with PredictionWriter(out, classes=model.classes, top_k=top_k, labelled=labelled,
                          all_probabilities=all_probabilities, format=output_format, taxonomy=model.taxonomy,
                          decode=model.card.decode) as writer:
        with contextlib.closing(_reported(model, items, batch_size=batch_size, embeddings=False)) as batches:
            for scored in batches:
                writer.write(scored)
                skipped += scored.skipped
    if len(skipped) == len(items):
        raise DataError(f"{len(items)} images", f"none can be used; {str(writer.out)!r} lists the reasons.",
                        fix="Check the files.")
    return WrittenPredictions(out=writer.out, images=len(items) - len(skipped), skipped=skipped)


def write_embeddings(model: Predictor, items: Sequence[Item], *, out: str | Path,
                     batch_size: int = 64) -> WrittenPredictions:
    """The penultimate-layer embeddings of ``items`` in ``out``: a .npz of embeddings, paths and (when every
    item has a label) labels and classes, as ``lepidopt report --embeddings`` reads it; or a .npy of the
    embeddings with X.paths.csv beside it, of path and label (``report --labels X.paths.csv --label-column
    label``).

    Args:
        model: The model whose penultimate layer to read (:func:`load_model`).
        items: The images, as :func:`items_of` lists them.
        out: A .npz or .npy file.
        batch_size: Images per batch.

    Returns:
        The file written, the number of images embedded and the items skipped with their reasons.

    Raises:
        SettingError: An ``out`` that is neither .npz nor .npy.
        DataError: No items, or none of them can be read.
    """
    out = Path(out)
    check_embedding_settings(out=out, batch_size=batch_size)
    _refuse_no_items(items)
    with contextlib.closing(_reported(model, items, batch_size=batch_size, embeddings=True)) as batches:
        embeddings, read, skipped = collected(batches)
    if embeddings is None:
        raise DataError(f"{len(items)} images", "none can be used.", fix="Check the files.")
    paths = np.array([item.path for item in read])
    labelled = all(item.label is not None for item in read)
    if not labelled and any(item.label is not None for item in read):
        log.warning("%d of the %d images have no label, so the embeddings are written without labels",
                    sum(item.label is None for item in read), len(read))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        extra: dict[str, Any] = {}
        if labelled:
            classes = sorted({str(item.label) for item in read})
            extra = {"labels": np.array([classes.index(str(item.label)) for item in read]),
                     "classes": np.array(classes)}
        with replacing(out) as tmp, tmp.open("wb") as handle:
            np.savez_compressed(handle, embeddings=embeddings, paths=paths, **extra)
    else:
        with replacing(out) as tmp, tmp.open("wb") as handle:
            np.save(handle, embeddings)
        with replacing(beside_npy(out)) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
            table = csv.writer(handle)
            table.writerow(["path", "label"])
            table.writerows([item.path, item.label or ""] for item in read)
    return WrittenPredictions(out=out, images=len(read), skipped=skipped)


def _refuse_no_items(items: Sequence[Item]) -> None:
    if not items:
        raise DataError("sources", "name no images.", fix="Give a folder, image files, a manifest or a list.")


def _reported(model: Predictor, items: Sequence[Item], *, batch_size: int,
              embeddings: bool) -> Generator[Scored, None, None]:
    """``model.stream`` with a progress bar, each skipped image a warning as its batch is done."""
    with contextlib.closing(model.stream(items, batch_size=batch_size, embeddings=embeddings)) as batches:
        for scored in progress(batches, total=-(-len(items) // batch_size),
                               desc="embedding" if embeddings else "predicting"):
            for item, reason in scored.skipped:
                log.warning("skipped %s: %s", item.path, reason)
            yield scored


def check_prediction_settings(*, out: str | Path, top_k: int, output_format: str | None, batch_size: int) -> None:
    """What write_predictions refuses, checked before a model is loaded or an image read."""
    prediction_format(out, output_format)
    if not whole_number(top_k, at_least=1):
        raise SettingError("top_k", top_k, "must be a whole number, at least 1.")
    check_batch_size(batch_size)


def check_embedding_settings(*, out: str | Path, batch_size: int) -> None:
    """What write_embeddings refuses, checked before a model is loaded or an image read."""
    if Path(out).suffix not in EMBEDDING_SUFFIXES:
        raise SettingError("out", str(out), f"must end in {' or '.join(EMBEDDING_SUFFIXES)}.")
    check_batch_size(batch_size)


def beside_npy(out: Path) -> Path:
    """The table of paths and labels written beside embeddings saved as ``out`` (.npy)."""
    return out.with_name(out.stem + ".paths.csv")
