"""What every engine must do, run against each: the same space and data finish, the results are read by
the same code (status, best trial, export), a resume stops at the total, failures are kept with their
reason, and one space format drives both."""

from pathlib import Path

import pytest
import yaml

from conftest import TINY_SPACE, write_space
from lepidopt.errors import SettingError, StudyError, TooManyFailures
from lepidopt.results import export_best, load_best
from lepidopt.api import Recycling, WorkerSettings, search, status

ENGINES = {
    "optuna": dict(engine="optuna", sampler="random", pruner="none"),
    "keras-tuner random": dict(engine="keras-tuner", tuner="random"),
    "keras-tuner hyperband": dict(engine="keras-tuner", tuner="hyperband"),
    "keras-tuner bayesian": dict(engine="keras-tuner", tuner="bayesian"),
    "keras-tuner grid": dict(engine="keras-tuner", tuner="grid"),
}


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_space_and_data_finish_and_are_read_by_the_same_code(engine, demo_folder, tmp_path):
    summary = search(study="c", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path, n_trials=3,
                     **ENGINES[engine])
    st = status(study="c", results_dir=tmp_path)
    assert summary.status == st
    assert st.n_finished == 3 and [t.state for t in st.trials] == ["COMPLETE"] * 3
    assert st.engine.startswith(ENGINES[engine]["engine"])
    best = load_best(study="c", results_dir=tmp_path)
    assert best.trial.number == st.best.number and best.trial.value == pytest.approx(st.best.value)
    for trial in best.study.trials:
        attrs = trial.user_attrs
        assert {"recipe", "seed", "history", "metrics", "timings", "worker"} <= set(attrs)
        assert attrs["metrics"][st.objective] == pytest.approx(trial.value)
        assert sorted(trial.intermediate_values) == [h["step"] for h in attrs["history"]]
        assert set(trial.params) <= {p.name for p in summary.run.space.params}
    if ENGINES[engine]["engine"] == "keras-tuner":
        assert (tmp_path / "c" / "keras_tuner" / "oracle.json").exists()
        assert all(t.user_attrs["lepidopt:imported_from"].startswith("keras-tuner") for t in best.study.trials)


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner random"])
def test_the_best_trial_exports_to_the_model_its_trial_scored(engine, demo_folder, tmp_path):
    search(study="x", data=str(demo_folder), space=str(write_space(tmp_path)), results_dir=tmp_path, n_trials=2,
           **ENGINES[engine])
    exported = export_best(study="x", results_dir=tmp_path)
    m = exported.metrics
    assert m["retrained_validation_value"] == pytest.approx(m["trial_validation_value"], abs=1e-6)
    assert (exported.folder / "model.keras").exists()


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner random", "keras-tuner hyperband"])
def test_a_second_run_continues_to_the_total_without_repeating_a_trial(engine, demo_folder, tmp_path):
    space = str(write_space(tmp_path))
    search(study="r", data=str(demo_folder), space=space, results_dir=tmp_path, n_trials=2, **ENGINES[engine])
    summary = search(study="r", results_dir=tmp_path, n_trials=4)
    assert summary.status.n_finished == 4
    again = search(study="r", results_dir=tmp_path, n_trials=4)
    assert len(again.status.trials) == 4
    seeds = [t.user_attrs["seed"] for t in load_best(study="r", results_dir=tmp_path).study.trials]
    assert len(set(seeds)) == 4


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner random"])
def test_failures_are_kept_with_their_reason_and_a_streak_stops_the_search(engine, demo_folder, tmp_path):
    broken = [str(tmp_path / f"broken{i}.weights.h5") for i in range(2)]
    for path in broken:
        Path(path).write_bytes(b"not weights")
    space = yaml.safe_load(write_space(tmp_path).read_text())
    space["fixed"].pop("weights")
    space["params"] = {"weights": {"choice": broken}, **space["params"]}
    space["baseline"]["weights"] = broken[0]
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    from lepidopt.api import TrialPolicy, WorkerSettings

    with pytest.raises(TooManyFailures, match="stopped after 2 failed trials in a row; the last failed with: "
                                              "ModelError: weights file"):
        search(study="f", data=str(demo_folder), space=str(path), results_dir=tmp_path, n_trials=5,
               workers=WorkerSettings(policy=TrialPolicy(max_failures=2)), **ENGINES[engine])
    st = status(study="f", results_dir=tmp_path)
    assert [t.state for t in st.trials] == ["FAIL", "FAIL"]
    assert all(t.note.startswith("failed: ModelError: weights file") for t in st.trials)


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner random"])
def test_a_choice_of_ints_and_floats_is_expressed_by_both_engines(engine, demo_folder, tmp_path):
    """Keras Tuner's Choice takes one type; the one mix a valid space can hold is declared as floats. No other
    valid space is refused (the refusal itself is tested on a space built by hand, in test_keras_tuner)."""
    space = yaml.safe_load(write_space(tmp_path).read_text())
    space["params"]["head.dropout"] = {"choice": [0, 0.25]}
    space["baseline"]["head.dropout"] = 0
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    summary = search(study="m", data=str(demo_folder), space=str(path), results_dir=tmp_path, n_trials=3,
                     **ENGINES[engine])
    assert summary.status.n_finished == 3
    assert {t.params["head.dropout"] for t in summary.status.trials} <= {0, 0.25}


@pytest.mark.parametrize("options, message", [
    (dict(engine="optuna", tuner="grid"), "tuner 'grid': is a Keras Tuner setting; add --engine keras-tuner"),
    (dict(engine="keras-tuner", sampler="tpe"), "sampler 'tpe': is an Optuna setting, and this study's engine is "
                                                "keras-tuner; choose Keras Tuner's oracle with --tuner"),
    (dict(engine="keras-tuner", pruner="median"), "pruner 'median': is an Optuna setting"),
    (dict(engine="ray"), r"engine 'ray': must be one of optuna, keras-tuner"),
    (dict(engine="keras-tuner", workers=WorkerSettings(recycling=Recycling(max_trials_per_process=2))),
     "max_trials_per_process 2: recycles Optuna workers; with "
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
