import json
import math

import numpy as np
import pytest

from lepidopt.data import DataSpec, class_weights, make_split, read_split, scan_source, undersample, write_split
from lepidopt.errors import DataError


@pytest.fixture(scope="module")
def scan(demo_folder):
    return scan_source(DataSpec(str(demo_folder)))


def test_split_is_stratified_seeded_and_covers_every_class(scan):
    split = make_split(scan, seed=1)
    again = make_split(scan, seed=1)
    other = make_split(scan, seed=2)
    assert split.subsets == again.subsets
    assert split.subsets != other.subsets
    for subset, per_class in split.counts().items():
        assert all(n >= 1 for n in per_class.values()), subset
    counts = split.counts()
    for label, n in scan.class_counts.items():
        assert counts["train"][label] + counts["val"][label] + counts["test"][label] == n
        assert abs(counts["test"][label] - n * 0.15) <= 1


def test_split_round_trips_through_split_json(scan, tmp_path):
    split = make_split(scan, seed=0)
    write_split(split, tmp_path / "split.json")
    back = read_split(tmp_path / "split.json")
    assert back.paths == split.paths and back.subsets == split.subsets and back.classes == split.classes
    assert np.array_equal(back.labels, split.labels)
    assert back.fingerprint() == split.fingerprint()
    data = json.loads((tmp_path / "split.json").read_text())
    assert set(data["counts"]) == {"train", "val", "test"}


def test_split_with_a_vanished_image_says_so(demo_copy, tmp_path):
    split = make_split(scan_source(DataSpec(str(demo_copy))), seed=0)
    write_split(split, tmp_path / "split.json")
    gone = split.paths[5]
    import os

    os.remove(gone)
    with pytest.raises(DataError, match=r"1 of its \d+ images are gone, e\.g\. '.*'\. Restore them, or start a new study"):
        read_split(tmp_path / "split.json")


def test_fingerprint_changes_when_an_image_changes(demo_copy):
    split = make_split(scan_source(DataSpec(str(demo_copy))), seed=0)
    before = split.fingerprint()
    with open(split.paths[0], "ab") as handle:
        handle.write(b"\0")
    assert split.fingerprint() != before


def test_bad_split_fractions(scan):
    with pytest.raises(DataError, match=r"split fractions val=0.6, test=0.5"):
        make_split(scan, seed=0, val_fraction=0.6, test_fraction=0.5)


@pytest.mark.parametrize("ratio", [1.0, 0.5, 0.1, 0.01])
def test_undersampling_follows_imbalanced_learns_ratio(ratio):
    labels = np.repeat([0, 1, 2, 3], [400, 120, 40, 10])
    keep = undersample(labels, ratio=ratio, seed=0)
    counts = np.bincount(labels[keep])
    assert counts.min() >= ratio * counts.max() - 1e-9
    assert counts.min() == 10  # the smallest class is never cut
    cap = math.ceil(10 / ratio)
    assert np.array_equal(counts, np.minimum([400, 120, 40, 10], cap))
    assert np.array_equal(keep, undersample(labels, ratio=ratio, seed=0))
    if ratio < 1 and cap < 400:
        assert not np.array_equal(keep, undersample(labels, ratio=ratio, seed=1))


def test_undersampling_rejects_a_ratio_outside_0_1():
    with pytest.raises(DataError, match=r"sampling.ratio 1.5: must lie in \(0, 1\]"):
        undersample(np.array([0, 1]), ratio=1.5, seed=0)


def test_class_weights():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.repeat([0, 1, 2], [60, 30, 10])
    assert class_weights(labels, mode="none", n_classes=3) is None
    balanced = class_weights(labels, mode="balanced", n_classes=3)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    assert np.allclose([balanced[i] for i in range(3)], expected)
    sqrt = class_weights(labels, mode="sqrt", n_classes=3)
    assert np.allclose([sqrt[i] for i in range(3)], np.sqrt(expected))
    assert class_weights(labels, mode="balanced", n_classes=4)[3] == 1.0
