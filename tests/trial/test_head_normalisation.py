"""A batch-normalised head is judged fairly from its first epoch: its input batch norm starts at the training
features' statistics, not at mean 0 and variance 1, which validation would use for hundreds of steps."""

import dataclasses

import pytest

from conftest import TINY_SPACE
from lepidopt.data import DataSpec, make_demo_collection, make_split, scan_source
from lepidopt.spaces import load_space
from lepidopt.trial import NullReporter, StudyData, run_trial

pytestmark = pytest.mark.slow  # trains


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Six drawn families, 30 to 40 images each: about 150 training images, 10 steps an epoch."""
    root = tmp_path_factory.mktemp("small") / "images"
    make_demo_collection(root, scale=0.01, image_size=48, seed=5, minimum=30)
    split = make_split(scan_source(DataSpec(str(root))), seed=0)
    return StudyData(split=split, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize("dense_layers", [0, 1])
def test_a_batch_normalised_head_scores_well_above_chance_after_its_first_epochs(small, dense_layers, monkeypatch):
    space = load_space(TINY_SPACE)
    recipe = dataclasses.replace(space.recipe(space.baseline), head_batchnorm=True, head_dense_layers=dense_layers,
                                 head_units=16, epochs_head=3, finetune_unfreeze="none", sampling_ratio=1.0)
    n_train = len(small.split.indices("train"))
    assert 130 <= n_train <= 190
    chance = 1 / small.n_classes
    scores = [h["balanced_accuracy"] for h in run_trial(recipe, small, NullReporter(), seed=0).history]
    assert min(scores) >= 3 * chance, scores  # from the first epoch on
    monkeypatch.setattr("lepidopt.model.start_normalised", lambda head, features: None)  # as the head started before
    before = [h["balanced_accuracy"] for h in run_trial(recipe, small, NullReporter(), seed=0).history]
    assert before[0] <= 2.1 * chance, before  # the same head judged with moving statistics at 0 and 1
    assert sum(scores) / 3 - sum(before) / 3 >= 0.25, (scores, before)
