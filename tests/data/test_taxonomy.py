"""The taxonomy as a tree: built from label paths and refused with a child under two parents; decoding that
respects it; mistakes measured by how far up the tree they reach."""

import numpy as np
import pytest

from lepidopt.data._taxonomy import (Taxonomy, consistent_share, decode_consistent, decode_independent, hierarchical_distance,
                                     mistake_severity)
from lepidopt.errors import DataError

LEVELS = ("family", "subfamily", "genus")
PATHS = [("Pieridae", "Pierinae", "Pieris"), ("Pieridae", "Pierinae", "Aporia"), ("Pieridae", "Coliadinae", "Colias"),
         ("Nymphalidae", "Satyrinae", "Erebia"), ("Nymphalidae", "Satyrinae", "Maniola"),
         ("Nymphalidae", "Nymphalinae", "Vanessa")]


@pytest.fixture
def tree() -> Taxonomy:
    return Taxonomy.from_paths(LEVELS, PATHS * 2)


def test_the_tree_has_each_level_s_classes_and_their_parents(tree):
    assert tree.classes[0] == ("Nymphalidae", "Pieridae")
    assert tree.classes[2] == ("Aporia", "Colias", "Erebia", "Maniola", "Pieris", "Vanessa")
    leaves = {tuple(tree.classes[level][i] for level, i in enumerate(row)) for row in tree.leaf_paths.tolist()}
    assert leaves == set(PATHS)
    assert Taxonomy.from_dict(tree.to_dict()) == tree
    assert tree.encode([PATHS[0]]).tolist() == [[1, 2, 4]]  # Pieridae, Pierinae (of 4, sorted), Pieris


def test_a_child_under_two_parents_is_refused_with_the_records_named():
    paths = PATHS + [("Pieridae", "Coliadinae", "Pieris"), ("Nymphalidae", "Satyrinae", "Vanessa")]
    names = [f"record 'r{i}'" for i in range(len(paths))]
    with pytest.raises(DataError, match=r"genus 'Pieris': has two parents: under subfamily 'Coliadinae' in record "
                       r"'r6'; under subfamily 'Pierinae' in record 'r0' \(1 other genus class has two parents too\); "
                       r"a taxonomy is a tree.*Correct the records' subfamily"):
        Taxonomy.from_paths(LEVELS, paths, names=names)
    with pytest.raises(DataError, match=r"record 'r1': has labels \['Pieridae', ''\]"):
        Taxonomy.from_paths(("family", "genus"), [("Pieridae", "Pieris"), ("Pieridae", "")],
                            names=["record 'r0'", "record 'r1'"])


def random_tables(tree: Taxonomy, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    tables = []
    for names in tree.classes:
        logits = rng.normal(scale=rng.uniform(0.1, 5.0), size=(n, len(names)))
        p = np.exp(logits)
        tables.append(p / p.sum(axis=1, keepdims=True))
    return tables


@pytest.mark.parametrize("seed", range(20))
def test_consistent_decoding_never_outputs_a_path_that_is_not_in_the_tree(tree, seed):
    rng = np.random.default_rng(seed)
    tables = random_tables(tree, rng, n=200)
    consistent = decode_consistent(tree, tables)
    assert consistent_share(tree, consistent) == 1.0
    # It is the best path: no path of the tree scores higher.
    scores = sum(np.log(t)[:, tree.leaf_paths[:, level]] for level, t in enumerate(tables))
    chosen = sum(np.log(t)[np.arange(200), consistent[:, level]] for level, t in enumerate(tables))
    np.testing.assert_allclose(chosen, scores.max(axis=1))
    independent = decode_independent(tables)
    assert independent.shape == consistent.shape and consistent_share(tree, independent) <= 1.0


def test_independent_decoding_can_leave_the_tree(tree):
    # Sure of Pieridae, of Satyrinae and of Erebia: a path no specimen can have.
    tables = [np.array([[0.1, 0.9]]), np.array([[0.0, 0.0, 0.1, 0.9]]), np.array([[0, 0, 1.0, 0, 0, 0]])]
    independent = decode_independent(tables)
    assert consistent_share(tree, independent) == 0.0
    assert consistent_share(tree, decode_consistent(tree, tables)) == 1.0


def test_mistake_severity_is_the_height_of_the_lowest_common_ancestor(tree):
    true = tree.encode([("Pieridae", "Pierinae", "Pieris")] * 4 + [("Nymphalidae", "Satyrinae", "Erebia")])
    predicted = tree.encode([("Pieridae", "Pierinae", "Pieris"),  # right: no mistake
                             ("Pieridae", "Pierinae", "Aporia"),  # wrong genus, right subfamily: 1
                             ("Pieridae", "Coliadinae", "Colias"),  # wrong subfamily, right family: 2
                             ("Nymphalidae", "Satyrinae", "Maniola"),  # wrong family: 3
                             ("Nymphalidae", "Satyrinae", "Maniola")])  # wrong genus: 1
    assert mistake_severity(true, predicted) == pytest.approx((1 + 2 + 3 + 1) / 4)
    assert mistake_severity(true[:1], predicted[:1]) == 0.0  # no mistake
    assert hierarchical_distance(true, predicted) == pytest.approx((0 + 1 + 2 + 3 + 1) / 5)
