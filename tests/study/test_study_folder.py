"""The study folder is one truth: a split bound to its data, creations that leave nothing behind when they
fail, storages found again from any folder, and the study's data built from the recorded run alone."""

import json
import os
import shutil

import optuna
import pytest
import yaml

from conftest import write_space
from lepidopt.cli import main
from lepidopt.data import DataSpec, make_split, scan_source, write_split
from lepidopt.errors import DataError, StorageError, StudyError
from lepidopt.results import export_best
from lepidopt.resolve import resolve_run
from lepidopt.api import search, status
from lepidopt.trial import study_data


def split_sources(folder) -> set[str]:
    """The class folders the images of a study's split come from."""
    items = json.loads((folder / "split.json").read_text())["items"]
    return {os.path.dirname(os.path.dirname(item["path"])) for item in items}


@pytest.fixture
def other_folder(demo_folder, tmp_path):
    """Another image collection: a copy of the demo folder somewhere else."""
    target = tmp_path / "other-images"
    shutil.copytree(demo_folder, target)
    return target


@pytest.mark.slow
def test_a_creation_that_fails_after_the_scan_leaves_nothing_and_the_next_trains_on_its_own_data(
        demo_folder, other_folder, tmp_path):
    (tmp_path / "a-folder").mkdir()
    space = str(write_space(tmp_path))
    # A journal 'file' that is a folder fails when the storage is opened, after the scan and the split.
    with pytest.raises(StorageError, match=r"storage 'journal:.*a-folder': cannot be opened \(.*Is a directory"):
        search(study="s", data=str(demo_folder), space=space, results_dir=tmp_path / "results", n_trials=1,
               storage=f"journal:{tmp_path / 'a-folder'}")
    assert not (tmp_path / "results").exists()
    assert list((tmp_path / "a-folder").iterdir()) == []

    summary = search(study="s", data=str(other_folder), space=space, results_dir=tmp_path / "results", n_trials=1,
                     sampler="random", pruner="none")
    assert summary.status.n_finished == 1
    assert split_sources(tmp_path / "results" / "s") == {str(other_folder)}
    assert yaml.safe_load((tmp_path / "results" / "s" / "run.yaml").read_text())["data"]["source"] == str(other_folder)


def test_a_split_left_by_an_unfinished_creation_is_not_reused_for_other_data(demo_folder, other_folder, tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    write_split(make_split(scan_source(DataSpec(str(demo_folder))), seed=0), folder / "split.json")  # no run.yaml
    search(study="s", data=str(other_folder), space=str(write_space(tmp_path)), results_dir=tmp_path,
           create_only=True)
    assert split_sources(folder) == {str(other_folder)}


def test_a_split_made_from_other_data_than_the_run_names_is_refused_on_every_open(demo_folder, other_folder,
                                                                                  tmp_path, capsys):
    run = resolve_run(study="s", results_dir=tmp_path, data=str(other_folder), space=str(write_space(tmp_path)))
    search(study="s", data=str(other_folder), space=str(write_space(tmp_path)), results_dir=tmp_path,
           create_only=True, sampler="random", pruner="none")
    spec = DataSpec(str(demo_folder))
    write_split(make_split(scan_source(spec), seed=0, data=spec), run.folder / "split.json")  # as a copy from another study
    message = (rf"split file '.*split.json': was made from {demo_folder}, not from {other_folder}, the data the study "
               r"names. A study trains only on the split it was created with: start a new study=")
    with pytest.raises(DataError, match=message):
        study_data(run)
    with pytest.raises(DataError, match=message):
        search(study="s", results_dir=tmp_path, n_trials=1)
    assert main(["worker", "--study", "s", "--results-dir", str(tmp_path)]) == 3
    assert f"was made from {demo_folder}, not from {other_folder}" in capsys.readouterr().err
    assert status(study="s", results_dir=tmp_path).trials[0].state == "WAITING"  # the baseline never ran


def test_a_split_whose_images_changed_is_refused(demo_folder, other_folder, tmp_path):
    search(study="s", data=str(other_folder), space=str(write_space(tmp_path)), results_dir=tmp_path,
           create_only=True)
    changed = next(other_folder.glob("Pieridae/*.jpg"))
    with changed.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(DataError, match=rf"1 of its \d+ images changed since the split was made, e.g. '{changed}' "
                                        r"\(\d+ bytes then, \d+ now\); the study's trials were trained on the images"):
        search(study="s", results_dir=tmp_path, n_trials=1)


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["sqlite:///x.db", "journal:j.log"])
def test_a_study_with_a_relative_storage_is_opened_from_another_folder(storage, demo_folder, tmp_path, monkeypatch,
                                                                       capsys):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir(), elsewhere.mkdir()
    space = str(write_space(tmp_path))
    monkeypatch.chdir(here)
    assert main(["search", "--study", "s", "--data", str(demo_folder), "--space", space, "--storage", storage,
                 "--n-trials", "3", "--sampler", "random", "--pruner", "none", "--create-only"]) == 0
    recorded = yaml.safe_load((here / "results" / "s" / "run.yaml").read_text())["storage"]
    assert recorded == storage.replace(":///", f":///{here}/").replace("journal:", f"journal:{here}/")

    monkeypatch.chdir(elsewhere)
    results = str(here / "results")
    assert main(["status", "--study", "s", "--results-dir", results]) == 0
    assert "study s: 1 trials, 0 of 3 finished" in capsys.readouterr().out
    assert main(["worker", "--study", "s", "--results-dir", results, "--n-trials", "2"]) == 0
    assert "study 's' now holds 2 finished trials" in capsys.readouterr().out
    assert main(["search", "--study", "s", "--results-dir", results]) == 0
    assert "study s: 3 trials, 3 of 3 finished" in capsys.readouterr().out

    # The same relative URL from here names another file, which holds no study: nothing is made there.
    for command in (["status"], ["worker"], ["search", "--results-dir", results, "--create-only"]):
        assert main([*command, "--study", "s", "--storage", storage]) == 7
        assert "does not exist, so it holds no study 's'; nothing was created" in capsys.readouterr().err
    assert sorted(os.listdir(elsewhere)) == []
    assert len(optuna.load_study(study_name="s", storage=recorded if storage.startswith("sqlite") else
                                 optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
                                     str(here / "j.log")))).trials) == 3  # the baseline was enqueued once


def test_a_storage_that_does_not_hold_the_study_lists_what_it_holds_and_creates_nothing(demo_folder, tmp_path,
                                                                                        capsys):
    storage = f"sqlite:///{tmp_path}/shared.db"
    space = str(write_space(tmp_path))
    search(study="a", data=str(demo_folder), space=space, results_dir=tmp_path, storage=storage, create_only=True)
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # a study folder whose storage does not hold its study
    run = yaml.safe_load((tmp_path / "b" / "run.yaml").read_text())
    (tmp_path / "b" / "run.yaml").write_text(yaml.safe_dump({**run, "study": "b"}))
    for command in (["status"], ["export"], ["search"], ["recover"]):
        assert main([*command, "--study", "b", "--results-dir", str(tmp_path)]) == 6, command
        err = capsys.readouterr().err
        assert f"study 'b': not in storage '{storage}', which holds 'a'; nothing was created" in err, command
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["a"]
    with pytest.raises(StudyError, match=r"study 'a': exists already in storage .*, created with its folder in "
                                         rf"{tmp_path}, and '.*other/a' holds no run.yaml of it. To resume it, give "
                                         rf"results_dir='{tmp_path}'; to start a new study, choose another study=\."):
        search(study="a", data=str(demo_folder), space=space, results_dir=tmp_path / "other", storage=storage)
    assert not (tmp_path / "other").exists()


def test_recover_of_an_unknown_study_asks_for_what_recover_takes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["recover", "--study", "unknown"]) == 6
    err = capsys.readouterr().err
    assert "study 'unknown': no run.yaml in" in err and "pass --storage with the study's storage URL" in err
    assert "--data" not in err and not (tmp_path / "results").exists()


@pytest.mark.slow
@pytest.mark.parametrize("settings", [dict(augment_views=2), dict(feature_cache=False)])
def test_an_augmented_study_exports_to_the_value_its_trial_scored(settings, demo_folder, tmp_path):
    space = yaml.safe_load(write_space(tmp_path, epochs_head=3).read_text())
    space["fixed"]["augment.strength"] = 0.5
    path = tmp_path / "augmented.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    search(study="x", data=str(demo_folder), space=str(path), results_dir=tmp_path, n_trials=2, sampler="random",
           pruner="none", **settings)
    assert yaml.safe_load((tmp_path / "x" / "run.yaml").read_text()).items() >= settings.items()
    m = export_best(study="x", results_dir=tmp_path).metrics
    assert m["retrained_validation_value"] == pytest.approx(m["trial_validation_value"], abs=1e-6)


def test_settings_that_decide_how_trials_train_cannot_change_within_a_study(demo_folder, tmp_path):
    search(study="v", data=str(demo_folder), space=str(write_space(tmp_path)), results_dir=tmp_path,
           augment_views=2, create_only=True)
    with pytest.raises(StudyError, match="was created with augment_views = 2, not 3; augment_views cannot change"):
        search(study="v", results_dir=tmp_path, augment_views=3)
    with pytest.raises(StudyError, match="was created with feature_cache = True, not False"):
        search(study="v", results_dir=tmp_path, feature_cache=False)
    search(study="v", results_dir=tmp_path, feature_cache_limit="2GB", create_only=True)  # a limit may change
    assert yaml.safe_load((tmp_path / "v" / "run.yaml").read_text())["feature_cache_limit"] == 2 * 1024**3


def test_split_manifests_that_overlap_are_refused(demo_folder, tmp_path):
    rows = ["path,label"] + [f"{p.relative_to(demo_folder)},{p.parent.name}" for p in sorted(demo_folder.glob("*/*.jpg"))]
    (tmp_path / "all.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "val.csv").write_text("\n".join(rows[:1] + rows[1:30]) + "\n")
    spec = DataSpec(str(tmp_path / "all.csv"), val_manifest=str(tmp_path / "all.csv"),
                    test_manifest=str(tmp_path / "val.csv"), image_root=str(demo_folder))
    with pytest.raises(DataError, match=rf"{len(rows) - 1} image paths are named more than once \(e.g. '.*jpg', "
                                        r"'.*jpg', in train and val and test\); an image may be in one of train, val "
                                        "and test only"):
        scan_source(spec)
