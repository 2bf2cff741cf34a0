"""The per-epoch metrics agree with scikit-learn's, including classes never predicted or absent."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

from lepidopt.trial import classification_metrics


@pytest.mark.parametrize("seed", range(5))
def test_the_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n_classes = 6
    y_true = rng.integers(0, n_classes - 1, 200)  # the last class never occurs
    logits = rng.normal(size=(200, n_classes)) + 2.5 * np.eye(n_classes)[y_true] * (rng.random(200) < 0.6)[:, None]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probabilities[:5] = np.eye(n_classes)[(y_true[:5] + 1) % n_classes]  # confident and wrong: clipping matters
    y_pred = probabilities.argmax(axis=1)
    ours = classification_metrics(y_true, probabilities)
    assert ours["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert ours["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert ours["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true),
                                                      zero_division=0))
    assert ours["loss"] == pytest.approx(log_loss(y_true, np.clip(probabilities, 1e-7, 1.0),
                                                  labels=np.arange(n_classes)), rel=1e-6)


def test_non_finite_probabilities_give_nan_metrics():
    metrics = classification_metrics(np.array([0, 1]), np.array([[np.nan, 0.5], [0.5, 0.5]]))
    assert all(np.isnan(v) for v in metrics.values())
