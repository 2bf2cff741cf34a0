"""One trial: sample the training split, train the head on backbone features, then fine-tune if asked."""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .._signals import stop_if_signalled
from ..errors import ModelError, StudyError
from ..recipe import Recipe
from ._checkpoint import Checkpoints
from ._labels import trial_labels
from ._metrics import classification_metrics, objective_direction, taxonomy_metrics
from ._phase1 import Network, phase1_features
from ._phase2 import finetune
from ._reporter import Reporter, TrialStopped
from ._study_data import StudyData

if TYPE_CHECKING:
    import keras

    from ..model import HeadTrainers

__all__ = ["TrialResult", "run_trial", "head_trainers", "fine_tuning_diverged", "DIVERGED_SHARE"]

log = logging.getLogger("lepidopt")


@dataclasses.dataclass(frozen=True)
class TrialResult:
    value: float
    metrics: dict[str, float]  # validation metrics after the last epoch
    history: list[dict[str, Any]]  # one entry per epoch of both phases
    timings: dict[str, float]  # seconds per stage
    n_train: int  # training images after undersampling
    model: Any = None  # with keep_model: the trained classifier, images in [0, 255] -> probabilities
    stop_reason: str | None = None  # why it ended before its last epoch: fine-tuning diverged


# A fine-tuning epoch scoring below this share of the head's best has collapsed, not dipped: fine-tuning at
# too high a learning rate falls to chance within an epoch and does not come back, and an epoch of it costs
# about a hundred head trials.
DIVERGED_SHARE = 0.5


def fine_tuning_diverged(value: float, head_best: float, direction: str, *, n_classes: float) -> bool:
    """Whether a fine-tuning epoch's objective ``value`` has collapsed from the head's best: a score below
    half of it, or a loss above both twice the head's and a uniform guess's (ln of the number of classes)."""
    if direction == "maximize":
        return value < DIVERGED_SHARE * head_best
    return value > max(head_best / DIVERGED_SHARE, math.log(n_classes))


class _Diverged(Exception):
    pass


def run_trial(recipe: Recipe, data: StudyData, reporter: Reporter, *, seed: int,
              objective: str = "balanced_accuracy", keep_model: bool = False,
              checkpoints: Checkpoints | None = None, keep_head: bool = False,
              decode: str = "independent") -> TrialResult:
    """Train one recipe on the study's data and return its validation score.

    Reports the objective after every epoch of both phases; raises TrialStopped when the reporter
    asks to stop, so a poor head is stopped before any fine-tuning is paid for. Phase 1 trains the
    head on pooled features of the frozen backbone (shared through the study's feature cache, with
    ``data.augment_views`` augmented passes per augmentation strength, or computed in the trial without
    a cache); phase 2 fine-tunes the unfrozen stages at their own learning rate, on images or on cached
    activations below conv5 (see ``_phase2``). With ``keep_model`` the result carries the trained
    classifier (without augmentation layers), ready to save.

    With ``checkpoints``, the trial saves its progress after epochs and, when a checkpoint is there
    already (a retried trial), first reports the saved epochs' values again, then continues after the
    last saved epoch. A diverging loss (not finite) fails the trial with a ModelError. A fine-tuning epoch
    that falls far below the head's best (``fine_tuning_diverged``) ends the trial after that epoch, with
    its value and the reason in ``stop_reason``. With ``keep_head`` (and ``checkpoints``) the trained head's
    last epoch is saved as a checkpoint whether or not one was due, for a later trial to fine-tune it.

    On a split with taxonomy levels the head predicts every level (``model._levels``), undersampling and
    class weights count the classes of ``sampling.level``, and the metrics are ``taxonomy_metrics`` of the
    predictions ``decode``d independently per level or as consistent paths.
    """
    direction = objective_direction(objective)
    if recipe.total_epochs == 0:
        raise StudyError("recipe trains for zero epochs", "set epochs_head (or epochs_finetune with an unfrozen "
                         "stage) above 0.")
    from ..model import (build_classifier, build_head, compile_model, fit_on_arrays, predict_arrays, set_seeds,
                         start_normalised)

    _clear_previous_trials()
    set_seeds(seed)
    started = time.perf_counter()
    timings: dict[str, float] = {"report": 0.0}
    split = data.split

    labels = trial_labels(split, recipe, seed=seed)
    chance = labels.chance_classes(objective)
    train_idx, val_idx, y_train, weights = labels.train_idx, labels.val_idx, labels.y_train, labels.class_weight

    def scored(probabilities: np.ndarray) -> dict[str, float]:
        if split.taxonomy is None:
            return classification_metrics(labels.y_val, probabilities)
        return taxonomy_metrics(labels.y_val, probabilities, split.taxonomy, decode=decode)

    network = Network(recipe, timings)
    features = phase1_features(recipe, data, network, train_idx=train_idx, val_idx=val_idx,
                               train_rows=labels.train_rows, seed=seed, timings=timings)

    set_seeds(seed)  # the head starts the same whether or not the backbone was built
    head = build_head(recipe, n_classes=labels.n_classes, feature_dim=int(features.val.shape[1]))
    if recipe.head_batchnorm and features.views is not None:
        start_normalised(head, features.views[0])  # before the trainer copies the head; a resume restores later
    if features.views is not None:  # trained by the process's traced trainer of its architecture, then copied back
        trainer = head_trainers().trainer(recipe, n_classes=labels.n_classes, feature_dim=int(features.val.shape[1]))
        trainer.start(head, learning_rate=recipe.head_lr)
        trained = trainer.model
    else:
        trained = head
        compile_model(head, optimizer=recipe.optimizer, learning_rate=recipe.head_lr)
    saved = checkpoints.latest() if checkpoints else None
    history: list[dict[str, Any]] = list(saved.history) if saved else []
    for entry in history:  # a retried trial: the values its first run reported, again, without judging
        reporter.report(entry[objective], entry["step"])
    metrics: dict[str, float] = {k: v for k, v in history[-1].items() if k not in ("phase", "epoch", "step")} \
        if history else {}

    stop_reason: str | None = None

    def after_epoch(phase: str, epoch: int, probabilities: np.ndarray, model: keras.Model) -> None:
        nonlocal metrics
        stop_if_signalled()
        metrics = scored(probabilities)
        step = len(history)
        if not np.isfinite(metrics["loss"]):
            raise ModelError(f"{phase} epoch {epoch}", "the validation loss is not finite (the training diverged, or "
                             "the features hold NaN or inf: check the weights file); "
                             f"a lower {'head.lr' if phase == 'head' else 'finetune.lr'} usually helps.")
        value = metrics[objective]
        history.append({"phase": phase, "epoch": epoch, "step": step, **metrics})
        log.debug("%s epoch %d: %s", phase, epoch, metrics)
        if checkpoints and checkpoints.due(phase):
            clock = time.perf_counter()
            checkpoints.save(phase, epoch, history, model)
            timings["checkpoint"] = timings.get("checkpoint", 0.0) + time.perf_counter() - clock
        clock = time.perf_counter()
        reporter.report(value, step)
        stop = reporter.should_stop()
        timings["report"] += time.perf_counter() - clock
        if stop:
            raise TrialStopped(step, value, history)
        heads = [entry[objective] for entry in history if entry["phase"] == "head"]
        if phase == "finetune" and heads and chance is not None:
            head_best = max(heads) if direction == "maximize" else min(heads)
            if fine_tuning_diverged(value, head_best, direction, n_classes=chance):
                raise _Diverged(f"fine-tuning diverged at epoch {epoch}: {objective} {value:.2f} after the head's "
                                f"{head_best:.2f}")

    try:
        clock, features_before = time.perf_counter(), timings.get("features", 0.0)
        first_head_epoch = 0
        try:
            if checkpoints and saved and saved.phase == "head":
                checkpoints.restore(trained, saved)
                first_head_epoch = saved.epoch + 1
            if (saved is None or saved.phase == "head") and first_head_epoch < recipe.epochs_head:
                if features.views is not None:
                    trainer.fit(features.views, y_train, val=features.val, epochs=recipe.epochs_head,
                                batch_size=recipe.batch_size, class_weight=weights, seed=seed,
                                initial_epoch=first_head_epoch, sample_weight=labels.sample_weight,
                                after_epoch=lambda epoch, outputs: after_epoch("head", epoch, outputs, trained))
                elif features.per_epoch is not None:
                    _housekeeping.fit_since_cleared = True
                    per_epoch = features.per_epoch
                    if recipe.head_batchnorm and saved is None:
                        per_epoch = _normalising_first(head, per_epoch)
                    fit_on_arrays(head, per_epoch, y_train, epochs=recipe.epochs_head,
                                  batch_size=recipe.batch_size, class_weight=weights, seed=seed,
                                  initial_epoch=first_head_epoch, sample_weight=labels.sample_weight,
                                  after_epoch=lambda epoch: after_epoch(
                                      "head", epoch, predict_arrays(head, features.val), head))
        finally:
            if trained is not head:
                head.set_weights(trained.get_weights())
        if keep_head and checkpoints and recipe.epochs_head > 0 and (saved is None or saved.phase == "head"):
            checkpoints.save("head", recipe.epochs_head - 1, history[:recipe.epochs_head], trained)
        timings["head"] = time.perf_counter() - clock - (timings.get("features", 0.0) - features_before)

        if recipe.finetune_unfreeze != "none" and recipe.epochs_finetune > 0:
            clock = time.perf_counter()
            _housekeeping.fit_since_cleared = True
            try:
                finetune(recipe, data, network, head, labels, seed=seed, after_epoch=after_epoch, timings=timings,
                         checkpoints=checkpoints, resume=saved if saved and saved.phase == "finetune" else None)
            except _Diverged as diverged:
                stop_reason = str(diverged)
                log.info("%s", stop_reason)
            timings["finetune"] = time.perf_counter() - clock - timings.get("prefix", 0.0)
    except TrialStopped as stop:
        stop.timings = {**timings, "trial": time.perf_counter() - started}
        raise

    value = metrics[objective]
    model = build_classifier(network.backbone, head, pooling=recipe.head_pooling) if keep_model else None
    timings["trial"] = time.perf_counter() - started
    return TrialResult(value=value, metrics=metrics, history=history, timings=timings, n_train=len(train_idx),
                       model=model, stop_reason=stop_reason)


@functools.cache
def _normalising_first(head: keras.Model, per_epoch: Callable[[int], np.ndarray]) -> Callable[[int], np.ndarray]:
    """``per_epoch``, starting the head's input batch norm at the first epoch's training features before the
    head trains on them (features computed in the trial, not cached, exist one epoch at a time)."""
    from ..model import start_normalised

    first = True

    def features(epoch: int) -> np.ndarray:
        nonlocal first
        values = per_epoch(epoch)
        if first:
            start_normalised(head, values)
            first = False
        return values

    return features


def head_trainers() -> HeadTrainers:
    """The head trainers this process keeps across its trials, one traced epoch per head architecture."""
    from ..model import HeadTrainers

    return HeadTrainers()


FULL_SCAN_GROWTH = 0.25  # CPython's own rule: scan the oldest objects again once they have grown by a quarter


@dataclasses.dataclass
class _Housekeeping:
    frozen_at_full_scan: int = 0  # objects hidden from the collector after the last full scan
    frozen_since: int = 0  # objects hidden since
    fit_since_cleared: bool = True  # a model trained by Model.fit since the Keras session was last cleared


_housekeeping = _Housekeeping()


def _clear_previous_trials() -> None:
    """Clear the Keras session if a trial trained with ``Model.fit`` since it was last cleared; collect what
    earlier trials left in reference cycles, then move every survivor out of the garbage collector's
    sight, so each trial's collection scans only what the last trial made. Once the hidden survivors have
    grown by a quarter since the last full scan (CPython's own rule), clear the session and scan
    everything again, which frees what was alive at a trial's start and became garbage later.

    The survivors are what the process keeps (TensorFlow's import, the study's cached trials, the head
    trainers) and the traced graphs TensorFlow keeps of every model trained with ``fit`` even after
    clear_session (tensorflow#61791); scanned by every collection, they would make each trial's start
    slower than the last.

    Clearing the session also empties TensorFlow's kernel cache, where traced functions are kept ready to
    run, and each head trainer's epoch would have to be made ready again; trials that train only heads on
    cached features add no traced function, so after them the session is left as it is.
    """
    from .._tf import forget_custom_gradients, keras

    full_scan = _housekeeping.frozen_since >= FULL_SCAN_GROWTH * _housekeeping.frozen_at_full_scan
    if full_scan or _housekeeping.fit_since_cleared:
        keras().backend.clear_session(free_memory=False)
        forget_custom_gradients()
        _housekeeping.fit_since_cleared = False
    if full_scan:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        _housekeeping.frozen_at_full_scan = gc.get_freeze_count()  # walks every object: once per full scan
        _housekeeping.frozen_since = 0
    else:
        gc.collect()
        _housekeeping.frozen_since += len(gc.get_objects())  # the survivors of the last trial, about to be frozen
        gc.freeze()
