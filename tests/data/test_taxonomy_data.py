"""Taxonomy data: several label levels read from ETHEC manifests, CSV columns and nested class folders, the tree
checked, fine classes too small to split kept at their coarser labels, a stratified split that keeps every class
of every level in every subset, and what data inspect prints per level."""

import csv
import json

import numpy as np
import pytest

from lepidopt.cli import main
from lepidopt.data import DataSpec, make_demo_collection, make_split, read_records, read_split, scan_source, \
    write_split
from lepidopt.data._taxonomy import Taxonomy, consistent_share, decode_consistent, mistake_severity
from lepidopt.errors import DataError, SettingError

from conftest import write_image

LEVELS = ("family", "subfamily", "genus", "species")


@pytest.fixture(scope="module")
def tree_demo(tmp_path_factory):
    """Six families, two subfamilies each, three genera and two species a genus (36 species, 12 to 79 images)."""
    return make_demo_collection(tmp_path_factory.mktemp("tree") / "demo", scale=0.01, image_size=32, manifest=True,
                                genera=3, species=2)


def test_an_ethec_manifest_gives_every_level_and_the_split_keeps_every_class_in_every_subset(tree_demo, tmp_path):
    spec = DataSpec(str(tree_demo.manifest), levels=LEVELS)
    scan = scan_source(spec)
    assert scan.unplaced == {} and len(scan.level_counts(3)) == 36 == len(tree_demo.species)
    assert scan.level_counts(2) == tree_demo.genera
    split = make_split(scan, seed=0, data=spec)
    assert split.taxonomy is not None and split.taxonomy.levels == LEVELS
    assert split.classes == split.taxonomy.classes[0]  # the flat label is the coarsest level's
    assert [len(c) for c in split.taxonomy.classes] == [6, 12, 18, 36]
    for subset in ("train", "val", "test"):
        rows = split.lineage[split.indices(subset)]
        for level in range(4):
            assert set(rows[:, level].tolist()) == set(range(len(split.taxonomy.classes[level]))), (subset, level)
    assert split.missing_from() == {}
    assert np.array_equal(split.lineage[:, 0], split.labels)
    write_split(split, tmp_path / "split.json")
    again = read_split(tmp_path / "split.json", data=spec)
    assert again.taxonomy == split.taxonomy and np.array_equal(again.lineage, split.lineage)
    assert again.fingerprint() == split.fingerprint()


def test_fine_classes_too_small_stay_at_their_coarser_labels_and_are_split_with_them(tree_demo, tmp_path):
    spec = DataSpec(str(tree_demo.manifest), levels=LEVELS, min_per_class=20)
    scan = scan_source(spec)
    small = {name: n for name, n in tree_demo.species.items() if n < 20}
    assert scan.unplaced["species"] == small and "genus" not in scan.unplaced and small
    assert len(scan.records) == sum(tree_demo.counts.values())  # nothing dropped
    split = make_split(scan, seed=1, data=spec)
    unplaced = split.lineage[:, 3] == -1
    assert unplaced.sum() == sum(small.values())
    assert (split.lineage[unplaced, 2] >= 0).all()  # still learned at genus
    for subset in ("val", "test"):  # every placed class of every level still in val and test
        rows = split.lineage[split.indices(subset)]
        for level in range(4):
            assert set(rows[:, level].tolist()) - {-1} == set(range(len(split.taxonomy.classes[level])))
    write_split(split, tmp_path / "split.json")
    items = json.loads((tmp_path / "split.json").read_text())["items"]
    assert sorted(len(item["lineage"]) for item in items)[0] == 3
    assert np.array_equal(read_split(tmp_path / "split.json").lineage, split.lineage)

    inspect = _inspect(tree_demo.manifest, "family,subfamily,genus,species", "--min-per-class", "20")
    assert f"species: {36 - len(small)} classes, {len(scan.records) - sum(small.values())} images placed" in inspect
    assert f"{len(small)} species classes too small to split ({sum(small.values())} images, learned down to genus)" \
        in inspect
    assert "subfamily: 12 classes" in inspect


def _inspect(source, levels, *extra):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["data", "inspect", str(source), "--levels", levels, *extra]) == 0
    return out.getvalue()


def test_csv_columns_and_nested_folders_give_the_same_tree(tmp_path):
    paths = {("Pieridae", "Pieris"): 4, ("Pieridae", "Colias"): 3, ("Nymphalidae", "Vanessa"): 5}
    rows = []
    for (family, genus), n in paths.items():
        for i in range(n):
            write_image(tmp_path / "tree" / family / genus / f"{i}.png")
            rows.append([f"{family}/{genus}/{i}.png", family, genus])
    table = tmp_path / "tree" / "labels.csv"
    with table.open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "fam", "gen"], *rows])
    from_csv = read_records(DataSpec(str(table), levels=("fam", "gen")))
    table.unlink()
    from_folders = read_records(DataSpec(str(tmp_path / "tree"), levels="family,genus"))
    assert sorted((r.path, r.lineage) for r in from_csv) == sorted((r.path, r.lineage) for r in from_folders)
    assert {r.label for r in from_folders} == {"Pieridae", "Nymphalidae"}

    write_image(tmp_path / "tree" / "Pieridae" / "loose.png")
    with pytest.raises(DataError, match=r"1 files lie fewer than 2 class folders deep \(e.g. 'Pieridae/loose.png'\), "
                       r"so they have no genus label.*root/<family>/<genus>/img001.jpg"):
        read_records(DataSpec(str(tmp_path / "tree"), levels="family,genus"))


def test_a_genus_under_two_subfamilies_is_refused_naming_its_records(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png")
    table = tmp_path / "labels.csv"
    table.write_text("path,family,subfamily,genus\na.png,Pieridae,Pierinae,Pieris\nb.png,Pieridae,Coliadinae,Pieris\n")
    with pytest.raises(DataError, match=r"genus 'Pieris': has two parents: under subfamily 'Coliadinae' in image "
                       r"'.*b.png'; under subfamily 'Pierinae' in image '.*a.png'"):
        read_records(DataSpec(str(table), levels="family,subfamily,genus"))
    table.write_text("path,family,genus\na.png,Pieridae,\n")
    with pytest.raises(DataError, match=r"line 2: empty label in column 'genus'"):
        read_records(DataSpec(str(table), levels="family,genus"))
    with pytest.raises(DataError, match=r"has no column 'tribe'"):
        read_records(DataSpec(str(table), levels="family,tribe"))


def test_levels_are_checked_where_they_enter(tree_demo):
    with pytest.raises(SettingError, match=r"levels='family': must name two or more distinct levels"):
        DataSpec("x.json", levels="family")
    with pytest.raises(SettingError, match=r"levels='genus,family': are not in order, coarse to fine; an ETHEC "
                       r"manifest has the levels family, subfamily, genus, species"):
        read_records(DataSpec(str(tree_demo.manifest), levels="genus,family"))
    with pytest.raises(SettingError, match=r"'tribe' is not an ETHEC level"):
        read_records(DataSpec(str(tree_demo.manifest), levels="family,tribe"))


def test_a_single_level_source_records_what_it_always_recorded(tree_demo, tmp_path):
    spec = DataSpec(str(tree_demo.manifest), label_level="genus")
    assert "levels" not in spec.to_dict() and DataSpec.from_dict(spec.to_dict()) == spec
    split = make_split(scan_source(spec), seed=0, data=spec)
    assert split.taxonomy is None and split.lineage is None
    write_split(split, tmp_path / "split.json")
    saved = json.loads((tmp_path / "split.json").read_text())
    assert "taxonomy" not in saved and "lineage" not in saved["items"][0]
    with_levels = DataSpec(str(tree_demo.manifest), levels=LEVELS)
    assert DataSpec.from_dict(with_levels.to_dict()) == with_levels and with_levels.to_dict()["levels"] == list(LEVELS)


@pytest.mark.parametrize("seed", range(10))
def test_consistent_decoding_on_a_tree_whose_paths_end_at_different_levels(seed):
    paths = [("A", "a1", "x"), ("A", "a1", "y"), ("A", "a2"), ("B", "b1", "z"), ("C",)]
    tree = Taxonomy.from_paths(("family", "genus", "species"), paths)
    assert sorted(map(tuple, tree.leaf_paths.tolist())) == sorted(map(tuple, tree.encode(paths).tolist()))
    rng = np.random.default_rng(seed)
    tables = [rng.dirichlet(np.ones(len(c)) * 0.5, size=100) for c in tree.classes]
    decoded = decode_consistent(tree, tables)
    assert consistent_share(tree, decoded) == 1.0
    # the truth unplaced below genus: a species predicted there is neither right nor wrong
    true = tree.encode([("A", "a2"), ("A", "a1", "x")])
    assert mistake_severity(true, np.array([[0, 1, 2], [0, 0, 0]])) == 0.0  # no mistake
    assert mistake_severity(true, np.array([[0, 1, -1], [0, 0, 1]])) == 1.0
