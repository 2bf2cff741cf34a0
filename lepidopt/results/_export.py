"""``lepidopt export``: retrain the best trial from its params and seed, save it, evaluate it on the test split."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .._files import replacing_folder
from ..data import image_batches
from .. import __version__
from ..model import build_deployable, embedding_model, embeddings_of
from ..predictor import MODEL_FILE, ModelCard, classification_metrics, write_card
from ..recipe import Recipe
from ..study import attrs
from ..trial import NullReporter, run_trial, study_data
from ._best import load_best

__all__ = ["ExportResult", "export_best"]

log = logging.getLogger("lepidopt")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    folder: Path
    metrics: dict[str, Any]


def export_best(*, study: str, storage: str | None = None, results_dir: str | Path | None = None,
                all_splits: bool = False) -> ExportResult:
    """Write ``results/<study>/best/``: model.keras, metrics.json (test split) and embeddings.npz.

    model.keras takes images of any size and carries its card (classes, input size, study, trial, recipe,
    data settings, lepidopt's version): :func:`lepidopt.load_model` needs nothing else.

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

    Returns:
        The folder written and its metrics (as metrics.json holds them).

    Raises:
        StudyError: The storage does not hold the study.
        ReportError: The study has no completed trial.
        DataError: The study's split no longer matches its data.
    """
    best = load_best(study=study, storage=storage, results_dir=results_dir)
    trial, run = best.trial, best.run
    recipe = Recipe.from_flat(trial.user_attrs[attrs.RECIPE], where=f"trial {trial.number} recipe")
    seed = int(trial.user_attrs.get(attrs.SEED, run.seed + trial.number))
    data = study_data(run)
    split = data.split
    log.info("retraining trial %d (%s %.4f) with seed %d", trial.number, run.objective, trial.value, seed)
    result = run_trial(recipe, data, NullReporter(), seed=seed, objective=run.objective, keep_model=True)
    log.info("retrained: %s %.4f (trial: %.4f)", run.objective, result.value, trial.value)

    images = data.images(recipe.image_size)
    test_idx = split.indices("test")
    test_batches = image_batches(images, split.labels, test_idx, batch_size=recipe.batch_size)
    probabilities = result.model.predict(test_batches, verbose=0)
    metrics: dict[str, Any] = {
        "study": study,
        "trial": trial.number,
        "objective": run.objective,
        "trial_validation_value": trial.value,
        "retrained_validation_value": result.value,
        "retrained_validation_metrics": result.metrics,
        "seed": seed,
        "params": trial.params,
        "recipe": recipe.to_flat(),
        "test": classification_metrics(split.labels[test_idx], probabilities, list(split.classes)),
    }

    subsets = ("train", "val", "test") if all_splits else ("test",)
    idx = np.concatenate([split.indices(s) for s in subsets])
    embedder = embedding_model(result.model)
    embeddings = embeddings_of(embedder, image_batches(images, split.labels, idx, batch_size=recipe.batch_size))
    card = ModelCard(classes=tuple(split.classes), image_size=recipe.image_size, study=study, trial=trial.number,
                     objective=run.objective, recipe=recipe.to_flat(), data=run.data.to_dict(),
                     lepidopt_version=__version__)
    folder = run.folder / "best"
    with replacing_folder(folder) as new:
        build_deployable(result.model, image_size=recipe.image_size).save(new / MODEL_FILE)
        write_card(new / MODEL_FILE, card)
        np.savez_compressed(new / "embeddings.npz", embeddings=embeddings, labels=split.labels[idx],
                            classes=np.array(split.classes), paths=np.array([split.paths[i] for i in idx]),
                            subsets=np.array([split.subsets[i] for i in idx]))
        (new / "metrics.json").write_text(json.dumps(metrics, indent=1))
    test = metrics["test"]
    log.info("test: accuracy %.4f, balanced accuracy %.4f, macro F1 %.4f -> %s", test["accuracy"],
             test["balanced_accuracy"], test["macro_f1"], folder)
    return ExportResult(folder=folder, metrics=metrics)
