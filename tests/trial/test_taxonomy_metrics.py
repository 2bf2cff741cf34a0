"""Per-level metrics as scikit-learn computes them, the tree's metrics, objectives checked against the
study's levels, and a trial's labels when undersampling and class weights count a fine level."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

from lepidopt.data import Split, Taxonomy
from lepidopt.errors import SettingError
from lepidopt.recipe import Recipe
from lepidopt.trial._labels import sampling_groups, sampling_level, trial_labels
from lepidopt.trial._metrics import check_objective, classification_metrics, taxonomy_metrics

LEVELS = ("family", "genus", "species")
PATHS = [("A", "A1", "A1a"), ("A", "A1", "A1b"), ("A", "A2", "A2a"), ("B", "B1", "B1a"), ("B", "B1", "B1b"),
         ("B", "B2")]


@pytest.fixture
def tree():
    return Taxonomy.from_paths(LEVELS, PATHS)


def _random_case(tree, seed, n=60):
    rng = np.random.default_rng(seed)
    lineage = tree.encode([PATHS[i] for i in rng.integers(0, len(PATHS), n)])
    tables = [rng.dirichlet(np.ones(len(c)), size=n) for c in tree.classes]
    return lineage, tables


@pytest.mark.parametrize("seed", range(5))
def test_each_levels_metrics_equal_scikit_learns_on_the_same_predictions(tree, seed):
    lineage, tables = _random_case(tree, seed)
    metrics = taxonomy_metrics(lineage, np.concatenate(tables, axis=1), tree)
    for level, (name, table) in enumerate(zip(LEVELS, tables)):
        placed = lineage[:, level] >= 0
        y, p = lineage[placed, level], table[placed]
        predicted = p.argmax(axis=1)
        assert metrics[f"{name}.accuracy"] == pytest.approx(accuracy_score(y, predicted))
        assert metrics[f"{name}.balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, predicted))
        assert metrics[f"{name}.micro_f1"] == pytest.approx(f1_score(y, predicted, average="micro"))
        assert metrics[f"{name}.macro_f1"] == pytest.approx(
            f1_score(y, predicted, average="macro", labels=np.unique(y)))
        assert metrics[f"{name}.loss"] == pytest.approx(log_loss(y, p, labels=range(table.shape[1])), rel=1e-6)
    assert metrics["mean.macro_f1"] == pytest.approx(np.mean([metrics[f"{n}.macro_f1"] for n in LEVELS]))
    assert metrics["balanced_accuracy"] == metrics["mean.balanced_accuracy"]


def test_consistent_decoding_scores_real_paths_only_and_a_path_ending_early_misses_the_finer_truth(tree):
    lineage, tables = _random_case(tree, 7, n=200)
    independent = taxonomy_metrics(lineage, np.concatenate(tables, axis=1), tree)
    consistent = taxonomy_metrics(lineage, np.concatenate(tables, axis=1), tree, decode="consistent")
    assert consistent["tree.consistent_share"] == 1.0 > independent["tree.consistent_share"]
    # the truth A/A1/A1a, predicted B/B2 (a path that ends at genus): wrong from the family down
    truth = tree.encode([("A", "A1", "A1a")])
    one_hot = [np.eye(len(c))[[tree.classes[i].index(label)]] for i, (c, label) in
               enumerate(zip(tree.classes, ("B", "B2", "B1a")))]
    scores = taxonomy_metrics(truth, np.concatenate(one_hot, axis=1), tree, decode="consistent")
    assert scores["species.accuracy"] == 0.0 and scores["tree.mistake_severity"] == 3.0
    # with a right prediction beside it, the severity stays the mistake's and the distance halves
    both = tree.encode([("A", "A1", "A1a"), ("B", "B2")])
    scores = taxonomy_metrics(both, np.concatenate([np.repeat(t, 2, axis=0) for t in one_hot], axis=1), tree,
                              decode="consistent")
    assert scores["tree.mistake_severity"] == 3.0 and scores["tree.hierarchical_distance"] == 1.5


def test_predictions_marked_none_count_as_wrong_in_a_single_levels_metrics():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    scores = classification_metrics(np.array([0, 1, 0]), probabilities, np.array([0, -1, 0]))
    assert scores["accuracy"] == pytest.approx(2 / 3) and scores["balanced_accuracy"] == pytest.approx(0.5)


def test_objectives_are_checked_against_the_studys_levels():
    assert check_objective("genus.macro_f1", LEVELS) == "maximize"
    assert check_objective("mean.loss", LEVELS) == "minimize"
    assert check_objective("tree.hierarchical_distance", LEVELS) == "minimize"
    with pytest.raises(SettingError, match=r"objective='tree\.mistake_severity'.*averages over the mistakes only.*"
                                           r"tree\.hierarchical_distance"):
        check_objective("tree.mistake_severity", LEVELS)
    assert check_objective("balanced_accuracy", None) == "maximize"
    with pytest.raises(SettingError, match=r"objective='subfamily\.accuracy'.*names level 'subfamily'.*family, "
                                           r"genus, species"):
        check_objective("subfamily.accuracy", LEVELS)
    with pytest.raises(SettingError, match=r"names a taxonomy level's metric, but the study has one label.*levels="):
        check_objective("genus.accuracy", None)
    with pytest.raises(SettingError, match=r"objective='genus\.precision'"):
        check_objective("genus.precision", LEVELS)


def test_sampling_at_a_fine_level_keeps_an_image_placed_above_it_in_a_class_of_its_own(tree):
    lineage = tree.encode(PATHS + [("B", "B2"), ("A", "A1", "A1a")])
    groups, placed = sampling_groups(lineage, 2)
    assert groups[0] == groups[-1] and groups[5] == groups[6]  # same species; same genus, no species
    assert len(set(groups.tolist())) == 6 and groups[5] not in placed and set(groups[:5]) <= set(placed)
    assert len(set(sampling_groups(lineage, 0)[0].tolist())) == 2
    assert sampling_level(Recipe(sampling_level="genus"), LEVELS) == 1
    assert sampling_level(Recipe(), LEVELS) == 0
    with pytest.raises(SettingError, match=r"sampling.level='tribe'.*family, genus, species"):
        sampling_level(Recipe(sampling_level="tribe"), LEVELS)


def test_undersampling_at_a_fine_level_is_sized_by_its_placed_classes_and_weighs_the_leftovers_one(tree):
    """Species A1a has 10 training images, A1b 8; one image of genus B2 has no species. Balancing at species
    caps A1a at 8, not at the single leftover image, and class weights balance the species only."""
    paths = [("A", "A1", "A1a")] * 10 + [("A", "A1", "A1b")] * 8 + [("B", "B2")]
    lineage = tree.encode(paths)
    split = Split(classes=tree.classes[0], paths=tuple(f"{i}.jpg" for i in range(len(paths))),
                  labels=lineage[:, 0], subsets=("train",) * len(paths), seed=0, val_fraction=0.15,
                  test_fraction=0.15, predefined=True, taxonomy=tree, lineage=lineage)
    labels = trial_labels(split, Recipe(sampling_level="species", sampling_ratio=1.0), seed=0)
    kept = lineage[labels.train_idx]
    assert (kept[:, 2] == 0).sum() == 8 and (kept[:, 2] == 1).sum() == 8 and (kept[:, 2] == -1).sum() == 1
    leftover = labels.sample_weight[kept[:, 2] == -1]
    assert leftover.tolist() == [1.0] and np.allclose(labels.sample_weight[kept[:, 2] >= 0], 1.0)
    assert labels.y_train.shape == (17, 6)
    assert np.array_equal(labels.y_train[:, 3:] > 0, kept >= 0)  # no loss weight where an image is not placed
