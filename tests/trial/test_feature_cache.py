"""The shared feature cache: same results as without it, keyed by what determines the features,
never trusting a damaged file."""

import dataclasses
import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import TINY_SPACE
from lepidopt.data import DataSpec, make_split, scan_source
from lepidopt._sizes import parse_size
from lepidopt.errors import SettingError
from lepidopt.trial import NullReporter, StudyData, run_trial
from lepidopt.trial._feature_cache import FeatureCache, cache_key
from lepidopt.spaces import load_space


@pytest.fixture(scope="module")
def split(demo_folder):
    return make_split(scan_source(DataSpec(str(demo_folder))), seed=0)


@pytest.fixture(scope="module")
def recipe():
    space = load_space(TINY_SPACE)
    return dataclasses.replace(space.recipe(space.baseline), finetune_unfreeze="none", epochs_head=3)


@pytest.mark.slow
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


def test_two_processes_filling_the_same_entry_compute_it_once_and_agree(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from lepidopt.trial._feature_cache import FeatureCache

        def compute():
            with open({str(tmp_path / "computed.log")!r}, "a") as log:
                log.write(sys.argv[1] + "\\n")
            time.sleep(1.5)  # long enough for the other process to arrive while this one computes
            return np.arange(200_000, dtype=np.float32).reshape(1000, 200) / 7
        start = float(sys.argv[2])
        time.sleep(max(0.0, start - time.time()))
        array = FeatureCache({str(tmp_path / "cache")!r}).get("shared", compute)
        np.save({str(tmp_path)!r} + "/seen-" + sys.argv[1] + ".npy", np.asarray(array))
    """)
    start = time.time() + 3
    workers = [subprocess.Popen([sys.executable, "-c", script, str(i), str(start)]) for i in range(2)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    assert len((tmp_path / "computed.log").read_text().split()) == 1  # the second waited and read
    seen = [np.load(tmp_path / f"seen-{i}.npy") for i in range(2)]
    assert np.array_equal(seen[0], seen[1])
    assert np.array_equal(seen[0], (np.arange(200_000, dtype=np.float32).reshape(1000, 200) / 7).astype(np.float16))
    meta = json.loads((tmp_path / "cache" / "features-shared.json").read_text())
    assert meta["shape"] == [1000, 200]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "features-shared.json", "features-shared.lock", "features-shared.npy"]


def test_an_entry_past_the_size_limit_is_used_but_not_stored(tmp_path, caplog):
    cache = FeatureCache(tmp_path, limit=1000)
    cache.get("small", lambda: np.zeros((10, 10), dtype=np.float32))  # 200 bytes of float16
    big = cache.get("big", lambda: np.ones((100, 10), dtype=np.float32))  # 2,000 bytes: over the limit
    assert big.shape == (100, 10) and float(big.sum()) == 1000.0
    assert not (tmp_path / "features-big.npy").exists()
    assert "limit is 1000.0 B" in caplog.text and "Raise feature_cache_limit= (a resumed search may)" in caplog.text


@pytest.mark.parametrize("text, size", [("500MB", 500 * 1024**2), ("1.5 GB", int(1.5 * 1024**3)), ("2048", 2048)])
def test_cache_limits_are_read_in_human_units(text, size):
    assert parse_size(text, setting="feature_cache_limit") == size


def test_a_limit_in_unknown_units_is_refused():
    with pytest.raises(SettingError, match="feature_cache_limit='lots': not a size; write a size such as 500MB"):
        parse_size("lots", setting="feature_cache_limit")


@pytest.mark.slow
def test_augmented_trials_share_a_fixed_number_of_views(split, recipe, tmp_path):
    augmented = dataclasses.replace(recipe, augment_strength=0.5, epochs_head=3)
    data = StudyData(split=split, cache_dir=tmp_path, augment_views=2)
    first = run_trial(augmented, data, NullReporter(), seed=1)
    assert len(list(tmp_path.glob("features-*.npy"))) == 1 + 2  # un-augmented features, and views 0 and 1
    n_train = len(split.indices("train"))
    assert sorted(np.load(p, mmap_mode="r").shape[0] for p in tmp_path.glob("features-*.npy")) == [
        n_train, n_train, len(split.paths)]
    second = run_trial(augmented, StudyData(split=split, cache_dir=tmp_path, augment_views=2), NullReporter(), seed=1)
    assert "build" not in second.timings  # every feature was cached and nothing fine-tunes: no ResNet-50 built
    assert second.value == first.value
    exact = run_trial(augmented, StudyData(split=split, cache_dir=tmp_path / "none", feature_cache=False),
                      NullReporter(), seed=1)
    assert 0.0 <= exact.value <= 1.0 and "build" in exact.timings


@pytest.mark.slow
def test_a_model_kept_from_a_cached_trial_is_the_network_its_features_came_from(split, recipe, tmp_path):
    """Features cached by the trial with seed 0 train the head of the trial with seed 3; the classifier it
    keeps must score on images what the trial scored on cached features."""
    from lepidopt.data import image_batches
    from lepidopt.trial import classification_metrics

    data = StudyData(split=split, cache_dir=tmp_path)
    run_trial(recipe, data, NullReporter(), seed=0)
    kept = run_trial(recipe, data, NullReporter(), seed=3, keep_model=True)
    val = split.indices("val")
    batches = image_batches(data.images(recipe.image_size), split.labels, val, batch_size=16)
    on_images = classification_metrics(split.labels[val], kept.model.predict(batches, verbose=0))
    assert abs(on_images["balanced_accuracy"] - kept.value) <= 0.05


@pytest.mark.slow
def test_conv5_fine_tuning_on_cached_activations_trains_the_backbone_itself(split, recipe, tmp_path):
    """Fine-tuning conv5 reads the cached activations below it; the model kept afterwards runs on images
    and must score what the trial scored, and the same trial on images lands close by."""
    from lepidopt.data import image_batches
    from lepidopt.trial import classification_metrics

    conv5 = dataclasses.replace(recipe, finetune_unfreeze="conv5", epochs_finetune=2, finetune_lr=1e-4)
    data = StudyData(split=split, cache_dir=tmp_path)
    cached = run_trial(conv5, data, NullReporter(), seed=2, keep_model=True)
    assert "prefix" in cached.timings and [h["phase"] for h in cached.history][-2:] == ["finetune"] * 2
    activations = [np.load(p, mmap_mode="r") for p in tmp_path.glob("features-*.npy")]
    assert sorted(a.ndim for a in activations) == [2, 4]  # pooled features and conv4's output maps
    val = split.indices("val")
    batches = image_batches(data.images(conv5.image_size), split.labels, val, batch_size=16)
    on_images = classification_metrics(split.labels[val], cached.model.predict(batches, verbose=0))
    assert abs(on_images["balanced_accuracy"] - cached.value) <= 0.05
    plain = run_trial(conv5, StudyData(split=split, cache_dir=tmp_path / "off", feature_cache=False), NullReporter(),
                      seed=2)
    assert "prefix" not in plain.timings
    assert abs(plain.history[2]["balanced_accuracy"] - cached.history[2]["balanced_accuracy"]) <= 0.1
