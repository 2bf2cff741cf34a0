import dataclasses
import gc
import importlib
import weakref

import numpy as np
import pytest

from conftest import TINY_SPACE
from lepidopt.data import DataSpec, make_split, scan_source
from lepidopt.errors import SettingError, StudyError
from lepidopt.trial import NullReporter, Reporter, StudyData, TrialStopped, run_trial
from lepidopt.spaces import load_space

pytestmark = pytest.mark.slow  # every test here trains


@pytest.fixture(scope="module")
def study_data(demo_folder, tmp_path_factory):
    split = make_split(scan_source(DataSpec(str(demo_folder))), seed=0)
    return StudyData(split=split, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def space():
    return load_space(TINY_SPACE)


def test_a_trial_reports_every_epoch_of_both_phases(study_data, space):
    recipe = space.recipe(space.baseline)  # conv5 fine-tuning, 3 + 1 epochs
    reporter = NullReporter()
    result = run_trial(recipe, study_data, reporter, seed=0)
    assert [step for step, _ in reporter.reports] == [0, 1, 2, 3]
    assert [h["phase"] for h in result.history] == ["head"] * 3 + ["finetune"]
    assert result.value == reporter.reports[-1][1] == result.metrics["balanced_accuracy"]
    assert 0.0 <= result.value <= 1.0
    assert set(result.timings) >= {"build", "features", "head", "finetune"}
    counts = np.bincount(study_data.split.labels[study_data.split.indices("train")])
    assert result.n_train == len(counts) * counts.min()  # ratio 1.0: balanced down to the smallest class


def test_undersampling_reaches_the_trial(study_data, space):
    recipe = dataclasses.replace(space.recipe(space.baseline), sampling_ratio=0.5, finetune_unfreeze="none")
    result = run_trial(recipe, study_data, NullReporter(), seed=0)
    train_labels = study_data.split.labels[study_data.split.indices("train")]
    counts = np.bincount(train_labels)
    assert result.n_train == sum(min(n, int(np.ceil(counts.min() / 0.5))) for n in counts)
    assert len(result.history) == 3


class StopAtTwo(Reporter):
    def __init__(self):
        self.steps = []

    def report(self, value, step):
        self.steps.append(step)

    def should_stop(self):
        return len(self.steps) == 2


def test_a_reporter_that_asks_to_stop_stops_the_trial_before_fine_tuning(study_data, space):
    reporter = StopAtTwo()
    with pytest.raises(TrialStopped) as stopped:
        run_trial(space.recipe(space.baseline), study_data, reporter, seed=0)
    assert stopped.value.step == 1 and reporter.steps == [0, 1]
    assert [h["phase"] for h in stopped.value.history] == ["head", "head"]


def test_loss_objective_and_zero_epochs(study_data, space):
    recipe = dataclasses.replace(space.recipe(space.baseline), finetune_unfreeze="none", epochs_head=1)
    result = run_trial(recipe, study_data, NullReporter(), seed=0, objective="loss")
    assert result.value == result.metrics["loss"] > 0
    with pytest.raises(SettingError, match=r"objective='f2': must be one of balanced_accuracy"):
        run_trial(recipe, study_data, NullReporter(), seed=0, objective="f2")
    with pytest.raises(StudyError, match=r"recipe trains for zero epochs"):
        run_trial(dataclasses.replace(recipe, epochs_head=0), study_data, NullReporter(), seed=0)


class _Node:
    pass


def test_a_trial_collects_what_earlier_trials_left_in_cycles_and_hides_the_survivors_from_later_collections(
        study_data, space):
    recipe = dataclasses.replace(space.recipe(space.baseline), finetune_unfreeze="none", epochs_head=1)
    garbage, survivor = _Node(), _Node()
    garbage.cycle, survivor.cycle = garbage, survivor
    collected = weakref.ref(garbage)
    del garbage
    gc.disable()  # only the trial may collect
    try:
        assert collected() is not None and any(o is survivor for o in gc.get_objects())
        run_trial(recipe, study_data, NullReporter(), seed=0)
        assert collected() is None
        assert not any(o is survivor for o in gc.get_objects())  # frozen: later collections do not scan it
    finally:
        gc.enable()


def test_an_augmented_trial_draws_fresh_features_every_epoch_and_fine_tunes_with_augmentation(study_data, space):
    recipe = dataclasses.replace(space.recipe(space.baseline), augment_strength=0.5, epochs_head=2,
                                 sampling_class_weight="sqrt", head_pooling="max")
    reporter = NullReporter()
    result = run_trial(recipe, study_data, reporter, seed=4)
    assert [h["phase"] for h in result.history] == ["head", "head", "finetune"]
    assert all(np.isfinite(v) for _, v in reporter.reports)
    assert result.timings["features"] > 0


def test_a_trial_scans_the_frozen_survivors_again_once_they_have_grown_by_a_quarter(study_data, space, monkeypatch):
    """Objects alive when a trial started are frozen; if they later become garbage in a cycle, only a full scan
    frees them. That scan walks every object (~0.25 s), so it waits until the frozen objects have grown by a
    quarter since the last one, as CPython's own collector waits for its oldest generation."""
    trial_module = importlib.import_module("lepidopt.trial._trial")
    recipe = dataclasses.replace(space.recipe(space.baseline), finetune_unfreeze="none", epochs_head=1)
    gc.disable()  # only the trial may collect
    try:
        def frozen_garbage():
            node = _Node()
            node.cycle = node
            gc.freeze()
            return weakref.ref(node)

        frozen = gc.get_freeze_count()
        housekeeping = trial_module._housekeeping
        monkeypatch.setattr(housekeeping, "frozen_at_full_scan", frozen)
        monkeypatch.setattr(housekeeping, "frozen_since", 0)
        not_yet = frozen_garbage()
        run_trial(recipe, study_data, NullReporter(), seed=0)
        assert not_yet() is not None  # frozen, not scanned: the frozen objects have not grown enough
        assert 0 < housekeeping.frozen_since < frozen / 4  # the last trial's survivors, counted

        monkeypatch.setattr(housekeeping, "frozen_since", frozen // 4 + 1)
        run_trial(recipe, study_data, NullReporter(), seed=0)
        assert not_yet() is None  # the full scan freed it
        assert housekeeping.frozen_since == 0 and housekeeping.frozen_at_full_scan > 0  # counted anew at the scan
    finally:
        gc.unfreeze()
        gc.enable()


def test_the_keras_session_is_cleared_after_a_trial_that_trained_with_fit_and_kept_after_heads_on_cached_features(
        study_data, space):
    """Clearing the session empties TensorFlow's kernel cache, which a head trainer's traced epoch then has to
    fill again; a trial that trained only heads on cached features made nothing to clear. Keras numbers the
    names of unnamed layers from scratch after a clear, which shows whether it happened."""
    from lepidopt._tf import keras as import_keras

    keras = import_keras()
    housekeeping = importlib.import_module("lepidopt.trial._trial")._housekeeping
    head_only = dataclasses.replace(space.recipe(space.baseline), finetune_unfreeze="none", epochs_head=1)
    uncached = dataclasses.replace(study_data, feature_cache=False)
    run_trial(dataclasses.replace(head_only, augment_strength=0.5), uncached, NullReporter(), seed=0)
    assert housekeeping.fit_since_cleared  # augmented on the fly without a cache: trained with Model.fit
    keras.layers.Dense(1)
    run_trial(head_only, study_data, NullReporter(), seed=0)
    assert keras.layers.Dense(1).name == "dense"  # cleared
    assert not housekeeping.fit_since_cleared
    run_trial(head_only, study_data, NullReporter(), seed=0)
    assert keras.layers.Dense(1).name == "dense_1"  # kept


def _live_variable_handles() -> int:
    """Including those the trials' housekeeping moved out of the collector's sight."""
    gc.unfreeze()
    gc.collect()
    count = sum(1 for o in gc.get_objects() if type(o).__name__ == "EagerTensor" and o.dtype.name == "resource")
    gc.freeze()
    return count


def test_a_fine_tuned_trials_variables_are_released_once_the_next_trial_starts(study_data, space):
    """Keras's optimizer registers a gradient function per traced train step, which would keep every
    variable of the fine-tuned model and its optimizer alive for good (~190 MB a trial for conv5 at 64 px)."""
    fine_tuned = space.recipe(space.baseline)
    assert fine_tuned.finetune_unfreeze == "conv5"
    head_only = dataclasses.replace(fine_tuned, finetune_unfreeze="none", epochs_head=1)
    run_trial(fine_tuned, study_data, NullReporter(), seed=0)
    run_trial(head_only, study_data, NullReporter(), seed=0)
    before = _live_variable_handles()
    for seed in (1, 2):
        run_trial(fine_tuned, study_data, NullReporter(), seed=seed)
        run_trial(head_only, study_data, NullReporter(), seed=seed)
    assert _live_variable_handles() <= before
