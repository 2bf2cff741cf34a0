"""A head per taxonomy level: per-level softmaxes side by side, the levels' weighted cross-entropies with a
level where an image is not placed left out, and the weights' geometric spread."""

import subprocess
import sys

import numpy as np
import pytest

from lepidopt.data import level_tables
from lepidopt.model import build_head, compile_model, level_targets, level_weights, output_sizes
from lepidopt.recipe import Recipe

SIZES = (2, 3, 4)


def test_level_weights_run_geometrically_from_coarsest_to_finest_with_a_mean_of_one():
    weights = level_weights(3, 4.0)
    assert weights[2] / weights[0] == pytest.approx(4.0) and weights[1] / weights[0] == pytest.approx(2.0)
    assert np.mean(weights) == pytest.approx(1.0)
    assert level_weights(4, 1.0) == (1.0, 1.0, 1.0, 1.0)


def test_each_levels_probabilities_sum_to_one_and_the_loss_is_the_weighted_sum_of_the_placed_levels():
    head = build_head(Recipe(), n_classes=SIZES, feature_dim=5)
    assert output_sizes(head) == SIZES
    features = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    output = np.asarray(head(features))
    assert output.shape == (6, sum(SIZES))
    for table in level_tables(output, SIZES):
        assert np.allclose(table.sum(axis=1), 1.0, atol=1e-6)

    lineage = np.array([[0, 1, 3], [1, 2, -1], [1, 0, 0], [0, -1, -1], [1, 2, 2], [0, 1, 1]])
    weights = level_weights(3, 2.0)
    targets = level_targets(lineage, weights)
    expected = np.zeros(6)
    for level, table in enumerate(level_tables(output, SIZES)):
        placed = lineage[:, level] >= 0
        expected[placed] += weights[level] * -np.log(table[placed, lineage[placed, level]])
    compile_model(head, optimizer="adam", learning_rate=1e-3)
    loss = np.asarray(head.loss(targets, output))
    assert float(loss) == pytest.approx(expected.mean(), rel=1e-5)


def test_a_taxonomy_head_saved_loads_with_its_levels_in_a_fresh_process(tmp_path):
    """A fresh interpreter has registered neither the layer nor the loss: load_classifier must."""
    head = build_head(Recipe(head_dense_layers=1, head_units=4), n_classes=SIZES, feature_dim=5)
    compile_model(head, optimizer="adam", learning_rate=1e-3)
    head.save(tmp_path / "head.keras")
    features = np.ones((2, 5), "float32")
    np.save(tmp_path / "expected.npy", np.asarray(head(features)))
    script = (f"import numpy as np; from lepidopt.model import load_classifier, output_sizes; "
              f"m = load_classifier({str(tmp_path / 'head.keras')!r}); assert output_sizes(m) == {SIZES!r}; "
              f"assert np.allclose(np.asarray(m(np.ones((2, 5), 'float32'))), np.load({str(tmp_path / 'expected.npy')!r}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_single_level_head_ends_in_one_softmax():
    head = build_head(Recipe(), n_classes=4, feature_dim=5)
    assert output_sizes(head) is None and head.layers[-1].name == "probabilities"
    assert head.output_shape == (None, 4)
