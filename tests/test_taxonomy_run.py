"""A taxonomy study's settings: its objective and decoding checked against its levels where they enter, a
space's taxonomy keys against the data, and what run.yaml and the split record."""

import pytest
import yaml

from conftest import TINY_SPACE
from lepidopt.cli import main
from lepidopt.data import DataSpec, make_demo_collection
from lepidopt.errors import SettingError, SpaceError
from lepidopt.resolve import resolve_run
from lepidopt.runs import write_run

LEVELS = "family,subfamily,genus,species"


@pytest.fixture(scope="module")
def tree_manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tree")
    return str(make_demo_collection(folder / "demo", scale=0.01, image_size=32, manifest=True, genera=3,
                                    species=2).manifest)


def _space(tmp_path, **extra):
    space = yaml.safe_load(TINY_SPACE.read_text())
    for key, value in extra.items():
        space["params"][key] = value
        space["baseline"][key] = value["choice"][0] if "choice" in value else value["float"][0]
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return str(path)


def test_a_taxonomy_run_checks_its_objective_and_decoding_against_its_levels(tree_manifest, tmp_path):
    data = DataSpec(tree_manifest, levels=LEVELS)
    run = resolve_run(study="t", results_dir=tmp_path, data=data, space="demo", objective="species.macro_f1",
                      decode="consistent")
    assert run.decode == "consistent" and run.objective == "species.macro_f1"
    write_run(run)
    recorded = yaml.safe_load((run.folder / "run.yaml").read_text())
    assert recorded["decode"] == "consistent" and recorded["data"]["levels"] == LEVELS.split(",")
    with pytest.raises(SettingError, match=r"objective='tribe\.accuracy'.*names level 'tribe'.*family, subfamily, "
                                           r"genus, species"):
        resolve_run(study="u", results_dir=tmp_path, data=data, space="demo", objective="tribe.accuracy")
    with pytest.raises(SettingError, match=r"decode='greedy'.*independent, consistent"):
        resolve_run(study="u", results_dir=tmp_path, data=data, space="demo", decode="greedy")
    with pytest.raises(SettingError, match=r"objective='tree\.consistent_share'.*1 for every trial.*decode="):
        resolve_run(study="u", results_dir=tmp_path, data=data, space="demo", objective="tree.consistent_share",
                    decode="consistent")
    with pytest.raises(SettingError, match=r"levels='family,mean'.*names level 'mean'.*Rename that level"):
        DataSpec(tree_manifest, levels="family,mean")


def test_a_single_label_run_refuses_taxonomy_settings_and_records_what_it_always_did(demo_folder, tmp_path):
    run = resolve_run(study="s", results_dir=tmp_path, data=str(demo_folder), space="demo")
    assert "decode" not in run.to_dict()
    with pytest.raises(SettingError, match=r"objective='genus\.accuracy'.*one label.*levels="):
        resolve_run(study="u", results_dir=tmp_path, data=str(demo_folder), space="demo", objective="genus.accuracy")
    with pytest.raises(SettingError, match=r"decode='consistent'.*one label"):
        resolve_run(study="u", results_dir=tmp_path, data=str(demo_folder), space="demo", decode="consistent")
    with pytest.raises(SpaceError, match=r"sampling.level.*a study with taxonomy levels.*levels="):
        resolve_run(study="u", results_dir=tmp_path, data=str(demo_folder),
                    space=_space(tmp_path, **{"sampling.level": {"choice": ["family", "genus"]}}))


def test_a_spaces_sampling_levels_must_be_the_datas(tree_manifest, tmp_path):
    data = DataSpec(tree_manifest, levels=LEVELS)
    space = _space(tmp_path, **{"sampling.level": {"choice": ["family", "tribe"]},
                                "taxonomy.fine_weight": {"float": [0.5, 4.0], "log": True}})
    with pytest.raises(SpaceError, match=r"sampling.level.*names level 'tribe'.*family, subfamily, genus, species"):
        resolve_run(study="u", results_dir=tmp_path, data=data, space=space)
    good = _space(tmp_path, **{"sampling.level": {"choice": ["family", "genus"]},
                               "taxonomy.fine_weight": {"float": [0.5, 4.0], "log": True}})
    assert resolve_run(study="v", results_dir=tmp_path, data=data, space=good).data.levels == tuple(LEVELS.split(","))


def test_search_takes_levels_an_objective_of_a_level_and_consistent_decoding(tree_manifest, tmp_path, capsys):
    code = main(["search", "--study", "t", "--results-dir", str(tmp_path), "--data", tree_manifest, "--levels", LEVELS,
                 "--min-per-class", "20", "--space", "demo", "--objective", "species.balanced_accuracy",
                 "--decode", "consistent", "--create-only"])
    assert code == 0
    err = capsys.readouterr().err
    assert "taxonomy: 6 family, 12 subfamily, 18 genus" in err
    recorded = yaml.safe_load((tmp_path / "t" / "run.yaml").read_text())
    assert recorded["objective"] == "species.balanced_accuracy" and recorded["decode"] == "consistent"
    code = main(["search", "--study", "u", "--results-dir", str(tmp_path), "--data", tree_manifest, "--levels", LEVELS,
                 "--space", "demo", "--objective", "species.precision", "--create-only"])
    assert code == 2
    assert "--objective species.precision" in capsys.readouterr().err


def test_a_single_label_recipe_and_model_card_record_the_keys_they_always_recorded():
    from lepidopt.predictor import ModelCard
    from lepidopt.recipe import Recipe

    assert list(Recipe().to_flat()) == [
        "image_size", "batch_size", "epochs_head", "epochs_finetune", "weights", "head.pooling",
        "head.dense_layers", "head.units", "head.activation", "head.dropout", "head.batchnorm", "head.lr",
        "optimizer", "augment.strength", "sampling.ratio", "sampling.class_weight", "finetune.unfreeze",
        "finetune.lr"]
    assert set(ModelCard(classes=("a", "b"), image_size=32).to_dict()) == {
        "format", "classes", "image_size", "study", "trial", "objective", "recipe", "data", "lepidopt_version"}
    tree = Recipe(sampling_level="genus", taxonomy_fine_weight=2.0).to_flat()
    assert tree["sampling.level"] == "genus" and tree["taxonomy.fine_weight"] == 2.0
