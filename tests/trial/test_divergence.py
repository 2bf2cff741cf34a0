"""Fine-tuning that collapses ends its trial after the epoch it collapsed in, with the reason recorded."""

import dataclasses
import math

import optuna
import pytest

from conftest import TINY_SPACE
from lepidopt.api import format_status, search, status
from lepidopt.data import DataSpec, make_split, scan_source
from lepidopt.spaces import load_space
from lepidopt.trial import DIVERGED_SHARE, NullReporter, StudyData, fine_tuning_diverged, run_trial


def test_a_collapse_is_told_from_a_dip():
    assert DIVERGED_SHARE == 0.5
    assert fine_tuning_diverged(0.10, 0.96, "maximize", n_classes=10)  # the case: chance after 0.96
    assert not fine_tuning_diverged(0.85, 0.96, "maximize", n_classes=10)  # a first fine-tuning epoch's dip
    assert not fine_tuning_diverged(0.49, 0.96, "maximize", n_classes=10)  # the line is half the head's best
    assert fine_tuning_diverged(0.47, 0.96, "maximize", n_classes=10)
    assert fine_tuning_diverged(2.5, 0.3, "minimize", n_classes=6)  # a loss above a uniform guess's ln 6
    assert not fine_tuning_diverged(0.7, 0.3, "minimize", n_classes=6)  # more than twice, still far from a guess
    assert not fine_tuning_diverged(math.log(6), 1.0, "minimize", n_classes=6)


class Scripted:
    """classification_metrics giving the trial's objective from a script, one value per epoch, so the test
    decides where fine-tuning collapses while the trial trains for real."""

    def __init__(self, values):
        self.values, self.calls = list(values), 0

    def __call__(self, y_true, probabilities):
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return {"accuracy": value, "balanced_accuracy": value, "macro_f1": value, "loss": 1.0}


@pytest.fixture(scope="module")
def space():
    return load_space(TINY_SPACE)


@pytest.mark.slow
def test_a_collapsing_fine_tuning_epoch_ends_the_trial_after_it(demo_folder, space, tmp_path, monkeypatch):
    split = make_split(scan_source(DataSpec(str(demo_folder))), seed=0)
    data = StudyData(split=split, cache_dir=tmp_path / "cache")
    recipe = dataclasses.replace(space.recipe(space.baseline), epochs_head=3, epochs_finetune=4)
    monkeypatch.setattr("lepidopt.trial._trial.classification_metrics", Scripted([0.6, 0.9, 0.96, 0.10, 0.9]))
    reporter = NullReporter()
    result = run_trial(recipe, data, reporter, seed=0)
    assert [h["phase"] for h in result.history] == ["head"] * 3 + ["finetune"]  # 1 of 4 fine-tuning epochs
    assert result.value == 0.10 and reporter.reports[-1] == (3, 0.10)
    assert result.stop_reason == "fine-tuning diverged at epoch 0: balanced_accuracy 0.10 after the head's 0.96"
    monkeypatch.setattr("lepidopt.trial._trial.classification_metrics", Scripted([0.6, 0.9, 0.96, 0.80, 0.85]))
    kept = run_trial(recipe, data, NullReporter(), seed=0)  # a dip is not a collapse: all four epochs run
    assert [h["phase"] for h in kept.history] == ["head"] * 3 + ["finetune"] * 4 and kept.stop_reason is None


@pytest.mark.slow
def test_the_study_records_why_a_trial_ended_early(demo_folder, tmp_path, monkeypatch):  # trial 0: the baseline
    monkeypatch.setattr("lepidopt.trial._trial.classification_metrics", Scripted([0.6, 0.9, 0.96, 0.10]))
    summary = search(study="d", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path, n_trials=1,
                     sampler="random", pruner="none", strategy="joint")  # the baseline fine-tunes
    (trial,) = optuna.load_study(study_name="d", storage=summary.run.storage).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 0.10
    assert trial.user_attrs["stop_reason"].startswith("fine-tuning diverged at epoch 0: balanced_accuracy 0.10")
    shown = format_status(status(study="d", results_dir=tmp_path))
    assert "ended early: fine-tuning diverged at epoch 0: balanced_accuracy 0.10 after the head's 0.96" in shown
