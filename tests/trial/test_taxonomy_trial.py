"""A trial on a collection with taxonomy levels: one head per level through both phases, on cached features
and on augmented images, judged by any level's metric or the tree's."""

import dataclasses

import numpy as np
import pytest

from conftest import TINY_SPACE
from lepidopt.data import DataSpec, image_batches, make_demo_collection, make_split, scan_source
from lepidopt.spaces import load_space
from lepidopt.trial import NullReporter, StudyData, run_trial, taxonomy_metrics

pytestmark = pytest.mark.slow  # every test here trains

LEVELS = ("family", "subfamily", "genus", "species")


@pytest.fixture(scope="module")
def tree_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tree")
    demo = make_demo_collection(folder / "demo", scale=0.01, image_size=32, manifest=True, genera=3, species=2)
    spec = DataSpec(str(demo.manifest), levels=LEVELS, min_per_class=20)  # some species too small: kept at genus
    split = make_split(scan_source(spec), seed=0, data=spec)
    assert (split.lineage[:, 3] == -1).any()
    return StudyData(split=split, cache_dir=folder / "cache")


@pytest.fixture(scope="module")
def recipe():
    space = load_space(TINY_SPACE)
    return dataclasses.replace(space.recipe(space.baseline), epochs_head=3, sampling_level="genus",
                               sampling_ratio=0.5, taxonomy_fine_weight=2.0)


def test_a_taxonomy_trial_reports_every_levels_metrics_every_epoch_of_both_phases(tree_data, recipe):
    result = run_trial(recipe, tree_data, NullReporter(), seed=0, objective="species.balanced_accuracy",
                       decode="consistent")
    assert [h["phase"] for h in result.history] == ["head"] * 3 + ["finetune"]
    for entry in result.history:
        assert {f"{level}.macro_f1" for level in LEVELS} <= set(entry)
        assert entry["tree.consistent_share"] == 1.0
    assert result.value == result.metrics["species.balanced_accuracy"]
    assert np.isfinite(result.metrics["mean.loss"])


def test_a_taxonomy_trial_fine_tunes_on_augmented_images_and_decodes_each_level_on_its_own(tree_data, recipe):
    augmented = dataclasses.replace(recipe, augment_strength=0.5, epochs_head=1)
    result = run_trial(augmented, tree_data, NullReporter(), seed=1, objective="mean.macro_f1", keep_model=True)
    assert [h["phase"] for h in result.history] == ["head", "finetune"]
    assert result.value == result.metrics["mean.macro_f1"]
    split = tree_data.split
    val = split.indices("val")
    probabilities = result.model.predict(image_batches(tree_data.images(augmented.image_size), split.labels, val,
                                                       batch_size=32), verbose=0)
    independent = taxonomy_metrics(split.lineage[val], probabilities, split.taxonomy, decode="independent")
    for key in ("family.accuracy", "species.macro_f1", "tree.consistent_share", "mean.balanced_accuracy"):
        assert result.metrics[key] == pytest.approx(independent[key], abs=1e-9), key
