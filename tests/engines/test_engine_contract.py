"""The engine contract run against every engine lepidopt registers, and the engine settings that do not go
together."""

import pytest
import yaml

from conftest import TINY_SPACE
from engine_contract import EngineContract
from lepidopt.api import Recycling, WorkerSettings, search
from lepidopt.engines import engine_names
from lepidopt.errors import SettingError, StudyError


class TestOptuna(EngineContract):
    options = dict(engine="optuna", sampler="random", pruner="none")


class KerasTunerContract(EngineContract):
    def check_engine_record(self, folder, study) -> None:
        assert (folder / "keras_tuner" / "oracle.json").exists()
        assert all(t.user_attrs["lepidopt:imported_from"].startswith("keras-tuner") for t in study.trials)


class TestKerasTunerRandom(KerasTunerContract):
    options = dict(engine="keras-tuner", tuner="random")


class TestKerasTunerHyperband(KerasTunerContract):
    options = dict(engine="keras-tuner", tuner="hyperband")


class TestKerasTunerBayesian(KerasTunerContract):
    options = dict(engine="keras-tuner", tuner="bayesian")


class TestKerasTunerGrid(KerasTunerContract):
    options = dict(engine="keras-tuner", tuner="grid")

    @pytest.mark.xfail(raises=StudyError, strict=True,
                       reason="Keras Tuner's grid oracle does not save its place in the grid, so a new process cannot "
                              "go on (keras-team/keras-tuner#1055); lepidopt refuses instead of running nothing")
    def test_a_second_run_continues_to_the_total_without_repeating_a_trial(self, demo_folder, tmp_path):
        super().test_a_second_run_continues_to_the_total_without_repeating_a_trial(demo_folder, tmp_path)


def test_every_registered_engine_runs_the_contract():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    tested = {cls.options["engine"] for cls in subclasses(EngineContract) if hasattr(cls, "options")}
    assert tested == set(engine_names())


@pytest.mark.parametrize("options, message", [
    (dict(engine="optuna", tuner="grid"), "tuner='grid': is a Keras Tuner setting; add engine='keras-tuner'"),
    (dict(engine="keras-tuner", sampler="tpe"), "sampler='tpe': is an Optuna setting, and this study's engine is "
                                                "keras-tuner; choose Keras Tuner's oracle: set tuner= to hyperband"),
    (dict(engine="keras-tuner", pruner="median"), "pruner='median': is an Optuna setting"),
    (dict(engine="ray"), r"engine='ray': must be one of optuna, keras-tuner"),
    (dict(engine="keras-tuner", workers=WorkerSettings(recycling=Recycling(max_trials_per_process=2))),
     "max_trials_per_process=2: recycles Optuna workers; with "
                                                           "engine keras-tuner one process"),
])
def test_engine_settings_that_do_not_belong_together_are_refused(options, message, demo_folder, tmp_path):
    with pytest.raises(SettingError, match=message):
        search(study="s", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path, n_trials=1, **options)


def test_a_study_keeps_its_engine_and_tuner(demo_folder, tmp_path):
    search(study="k", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path, n_trials=1,
           engine="keras-tuner", tuner="random", create_only=True)
    with pytest.raises(StudyError, match="was created with engine = 'keras-tuner', not 'optuna'; engine cannot change"):
        search(study="k", results_dir=tmp_path, engine="optuna")
    with pytest.raises(StudyError, match="was created with tuner = 'random', not 'grid'"):
        search(study="k", results_dir=tmp_path, tuner="grid")
    assert yaml.safe_load((tmp_path / "k" / "run.yaml").read_text())["tuner"] == "random"
