"""``lepidopt export``: retrain the best trial from its params and seed, save it, evaluate it on the test split."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .._files import replacing_folder
from ..data import image_batches, level_tables
from .. import __version__
from ..model import build_deployable, embedding_model, embeddings_of
from ..predictor import (FORMAT_FILES, TOLERANCE, ModelCard, check_formats, classification_metrics, level_columns,
                         load_model, taxonomy_test_metrics,
                         remove_format, write_format)
from ..recipe import Recipe
from ..study import attrs
from ..trial import NullReporter, run_trial, study_data
from ._best import load_best

if TYPE_CHECKING:
    import keras

__all__ = ["ExportResult", "export_best"]

log = logging.getLogger("lepidopt")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    folder: Path
    metrics: dict[str, Any]


def export_best(*, study: str, storage: str | None = None, results_dir: str | Path | None = None,
                all_splits: bool = False, formats: str | Sequence[str] = ("keras",),
                trial: int | None = None) -> ExportResult:
    """Write ``results/<study>/best/``: model.keras, metrics.json (test split) and embeddings.npz, and the
    model in the other ``formats`` asked for: model.savedmodel/, model.onnx, model.tflite.

    Every model file takes images of any size and carries its card (classes, input size, study, trial,
    recipe, data settings, lepidopt's version): :func:`lepidopt.load_model` needs nothing else. Each format
    other than Keras is run on the test split after writing and compared with the Keras model: the largest
    probability difference and the top-1 agreement go to metrics.json under ``formats``; a format beyond its
    tolerance (SavedModel 1e-5, ONNX 1e-4, LiteRT 1e-3) or disagreeing on one image is removed, and
    recorded as failed.

    The best trial is retrained from its recorded recipe and seed, on the study's data as its trials read
    it (the same split, feature cache and augmented views), rather than kept during the search: no worker
    has to save models it may never need, and the retrained model's validation score is compared with
    the trial's and both are recorded. best/ is replaced whole, or not at all when the export fails or is
    interrupted.

    Args:
        study: The study's name.
        storage: The study's storage URL; default: the one in its run.yaml.
        results_dir: Where the study's folder is, if not where it was created.
        all_splits: Save the embeddings of every split, not only the test split's.
        formats: keras (always written), savedmodel, onnx and litert, as a list or comma-separated.
        trial: Export this completed trial instead of the best.

    Returns:
        The folder written and its metrics (as metrics.json holds them).

    Raises:
        SettingError: A format that is not one of keras, savedmodel, onnx, litert.
        MissingExtraError: ONNX without tf2onnx, onnx and onnxruntime (``pip install 'lepidopt[onnx]'``).
        StudyError: The storage does not hold the study.
        ReportError: The study has no completed trial.
        DataError: The study's split no longer matches its data.
    """
    formats = check_formats(formats)  # before anything is trained
    best = load_best(study=study, storage=storage, results_dir=results_dir, trial=trial)
    chosen, run = best.trial, best.run
    recipe = Recipe.from_flat(chosen.user_attrs[attrs.RECIPE], where=f"trial {chosen.number} recipe")
    seed = int(chosen.user_attrs.get(attrs.SEED, run.seed + chosen.number))
    data = study_data(run)
    split = data.split
    log.info("retraining trial %d (%s %.4f) with seed %d", chosen.number, run.objective, chosen.value, seed)
    result = run_trial(recipe, data, NullReporter(), seed=seed, objective=run.objective, keep_model=True,
                       decode=run.decode)
    log.info("retrained: %s %.4f (trial: %.4f)", run.objective, result.value, chosen.value)

    images = data.images(recipe.image_size)
    test_idx = split.indices("test")
    test_batches = image_batches(images, split.labels, test_idx, batch_size=recipe.batch_size)
    probabilities = result.model.predict(test_batches, verbose=0)
    metrics: dict[str, Any] = {
        "study": study,
        "trial": chosen.number,
        "objective": run.objective,
        "trial_validation_value": chosen.value,
        "retrained_validation_value": result.value,
        "retrained_validation_metrics": result.metrics,
        "seed": seed,
        "params": chosen.params,
        "recipe": recipe.to_flat(),
        "test": classification_metrics(split.labels[test_idx], probabilities, list(split.classes))
        if split.taxonomy is None or split.lineage is None else
        taxonomy_test_metrics(split.lineage[test_idx], probabilities, split.taxonomy, run.decode),
    }

    subsets = ("train", "val", "test") if all_splits else ("test",)
    idx = np.concatenate([split.indices(s) for s in subsets])
    embedder = embedding_model(result.model)
    embeddings = embeddings_of(embedder, image_batches(images, split.labels, idx, batch_size=recipe.batch_size))
    card = ModelCard(classes=tuple(split.classes), image_size=recipe.image_size, study=study, trial=chosen.number,
                     objective=run.objective, recipe=recipe.to_flat(), data=run.data.to_dict(),
                     lepidopt_version=__version__)
    if split.taxonomy is not None:
        card = dataclasses.replace(card, classes=tuple(level_columns(split.taxonomy)),
                                   taxonomy=split.taxonomy.to_dict(), decode=run.decode)
    folder = run.folder / "best"
    deployable = build_deployable(result.model, image_size=recipe.image_size)
    test_images = np.asarray(images[test_idx])
    with replacing_folder(folder) as new:
        metrics["formats"] = {name: _written(name, deployable, card, new, test_images, probabilities)
                              for name in formats}
        tree = {} if split.taxonomy is None or split.lineage is None else \
            {"lineage": split.lineage[idx], "taxonomy": np.array(json.dumps(split.taxonomy.to_dict()))}
        np.savez_compressed(new / "embeddings.npz", embeddings=embeddings, labels=split.labels[idx],
                            classes=np.array(split.classes), paths=np.array([split.paths[i] for i in idx]),
                            subsets=np.array([split.subsets[i] for i in idx]), **tree)
        (new / "metrics.json").write_text(json.dumps(metrics, indent=1))
    failed = [name for name, check in metrics["formats"].items() if not check["passed"]]
    if failed:
        log.warning("export: %s failed the check against the Keras model and %s not kept: %s", ", ".join(failed),
                    "was" if len(failed) == 1 else "were",
                    "; ".join(f"{name}: {metrics['formats'][name]['verdict']}" for name in failed))
    test = metrics["test"]
    log.info("test: accuracy %.4f, balanced accuracy %.4f, macro F1 %.4f -> %s", test["accuracy"],
             test["balanced_accuracy"], test["macro_f1"], folder)
    return ExportResult(folder=folder, metrics=metrics)


def _written(name: str, deployable: keras.Model, card: ModelCard, folder: Path,
             images: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Write format ``name``, run it on the test images and compare its probabilities with the Keras model's;
    a file that fails is removed."""
    started = time.perf_counter()
    if name == "keras":
        path = write_format(name, deployable, card, folder)
        return {"file": path.name, "passed": True, "seconds": round(time.perf_counter() - started, 2),
                "bytes": _size(path)}
    path = folder / FORMAT_FILES[name]
    try:
        write_format(name, deployable, card, folder)
        seconds = time.perf_counter() - started
        runner = load_model(path).runner
        batches = [runner.probabilities(images[i:i + 32].astype(np.float32)) for i in range(0, len(images), 32)]
    except Exception as exc:  # a converter or runtime that cannot handle this model costs this format only
        remove_format(path)
        log.debug("export to %s failed", name, exc_info=True)
        return {"file": path.name, "passed": False, "verdict": f"conversion failed: {type(exc).__name__}: {exc}"}
    probabilities = np.concatenate(batches) if batches else np.zeros_like(reference)
    difference = float(np.abs(probabilities - reference).max()) if len(reference) else 0.0
    agreement = _top1_agreement(probabilities, reference, card)
    # Within the tolerance, top-1 can differ only where the Keras model's two best classes are that close:
    # the agreement is reported, the tolerance decides.
    passed = difference <= TOLERANCE[name]
    check = {"file": path.name, "passed": passed, "max_abs_difference": difference, "top1_agreement": agreement,
             "tolerance": TOLERANCE[name], "images": int(len(reference)), "seconds": round(seconds, 2),
             "bytes": _size(path)}
    check["verdict"] = (f"largest probability difference {difference:.2g} (at most {TOLERANCE[name]:g}), top-1 "
                        f"agreement {agreement:.2%} on {len(reference)} test images")
    if not passed:
        remove_format(path)
    return check


def _top1_agreement(probabilities: np.ndarray, reference: np.ndarray, card: ModelCard) -> float:
    """The share of images whose most probable class is the same in both; a taxonomy model's at every level."""
    if not len(reference):
        return 1.0
    sizes = [len(c) for c in card.taxonomy["classes"]] if card.taxonomy is not None else [reference.shape[1]]
    same = np.ones(len(reference), bool)
    for ours, theirs in zip(level_tables(probabilities, sizes), level_tables(reference, sizes)):
        same &= ours.argmax(axis=1) == theirs.argmax(axis=1)
    return float(same.mean())


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
