"""The shared feature cache: same results as without it, keyed by what determines the features,
never trusting a damaged file."""

import dataclasses

import numpy as np
import pytest

from conftest import TINY_SPACE
from lepidopt.data import DataSpec, make_split, scan_source
from lepidopt.search import NullReporter, StudyData, run_trial
from lepidopt.search._feature_cache import FeatureCache, cache_key
from lepidopt.spaces import load_space


@pytest.fixture(scope="module")
def split(demo_folder):
    return make_split(scan_source(DataSpec(str(demo_folder))), seed=0)


@pytest.fixture(scope="module")
def recipe():
    space = load_space(TINY_SPACE)
    return dataclasses.replace(space.recipe(space.baseline), finetune_unfreeze="none", epochs_head=3)


def test_a_cached_and_an_uncached_trial_reach_the_same_phase_1_score(split, recipe, tmp_path):
    cached = StudyData(split=split, cache_dir=tmp_path / "a", feature_cache=True)
    first = run_trial(recipe, cached, NullReporter(), seed=5)
    assert len(list((tmp_path / "a").glob("features-*.npy"))) == 1
    second = run_trial(recipe, cached, NullReporter(), seed=5)  # reads the cache
    plain = run_trial(recipe, StudyData(split=split, cache_dir=tmp_path / "b", feature_cache=False), NullReporter(),
                      seed=5)
    assert not list((tmp_path / "b").glob("features-*.npy"))
    assert first.value == second.value
    assert abs(first.value - plain.value) <= 0.05  # float16 features against float32
    assert abs(first.metrics["loss"] - plain.metrics["loss"]) < 0.05


def test_the_key_changes_with_what_determines_the_features(split, demo_copy):
    base = dict(data=split.fingerprint(), backbone="resnet50", weights="none", image_size=32, pooling="avg",
                augment=0.0, view=0)
    assert cache_key(**base) == cache_key(**dict(base))
    assert cache_key(**{**base, "image_size": 48}) != cache_key(**base)
    assert cache_key(**{**base, "pooling": "max"}) != cache_key(**base)
    changed = make_split(scan_source(DataSpec(str(demo_copy))), seed=0)
    before = changed.fingerprint()
    with open(changed.paths[0], "ab") as handle:
        handle.write(b"\0")
    assert changed.fingerprint() != before


def test_a_corrupt_entry_is_detected_and_rebuilt(tmp_path, caplog):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(12, dtype=np.float32).reshape(3, 4)

    FeatureCache(tmp_path).get("k", compute)
    entry = tmp_path / "features-k.npy"
    raw = bytearray(entry.read_bytes())
    raw[-3] ^= 0xFF
    entry.write_bytes(bytes(raw))
    again = FeatureCache(tmp_path).get("k", compute)
    assert len(calls) == 2 and "corrupt" in caplog.text
    assert np.array_equal(np.asarray(again, dtype=np.float32), np.arange(12, dtype=np.float32).reshape(3, 4))
    FeatureCache(tmp_path).get("k", compute)  # the rebuilt entry is trusted again
    assert len(calls) == 2
    assert not list(tmp_path.glob(".*.tmp*"))  # no temporary file left behind
