"""The Optuna engine on a real SQLite study: pruning acts on per-epoch reports, failures are kept."""

import optuna
import pytest
import yaml

from conftest import TINY_SPACE
from lepidopt.errors import ModelError
from lepidopt.runs import resolve_run
from lepidopt.search import StudyData, prepare_split, search
from lepidopt.search._optuna_engine import create_or_load_study, make_pruner, make_sampler, optimize


@pytest.fixture
def tiny_run(demo_folder, tmp_path):
    return resolve_run(study="e", results_dir=tmp_path, data=str(demo_folder), space=str(TINY_SPACE))


def test_pruning_acts_on_the_reported_epochs(tiny_run):
    split = prepare_split(tiny_run)
    study = optuna.create_study(
        study_name="e", storage=f"sqlite:///{tiny_run.folder}/study.db", direction="maximize",
        pruner=optuna.pruners.ThresholdPruner(lower=1.01, n_warmup_steps=1),  # nothing reaches 1.01
    )
    optimize(tiny_run, study, StudyData(split, tiny_run.folder / "cache"), n_trials=1, timeout=None)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert sorted(trial.intermediate_values) == [0, 1]
    assert [h["step"] for h in trial.user_attrs["history"]] == [0, 1]


def test_a_failing_trial_is_kept_with_its_reason_and_the_study_goes_on(demo_folder, tmp_path):
    space = yaml.safe_load(TINY_SPACE.read_text())
    space["fixed"].pop("weights")
    space["params"] = {"weights": {"choice": ["none", str(tmp_path / "gone.weights.h5")]}, **space["params"]}
    space["baseline"]["weights"] = str(tmp_path / "gone.weights.h5")
    space["baseline"]["finetune.unfreeze"] = "none"
    space["baseline"].pop("finetune.lr")
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    summary = search(study="f", data=str(demo_folder), space=str(path), results_dir=tmp_path, n_trials=2,
                     sampler="random", pruner="none", seed=1)
    states = [t.state for t in summary.status.trials]
    assert states[0] == "FAIL" and summary.status.n_finished == 2
    assert "ModelError: weights '" in summary.status.trials[0].note and "gone.weights.h5" in summary.status.trials[0].note


def test_a_missing_weights_file_stops_the_search_before_any_trial(demo_folder, tmp_path):
    with pytest.raises(ModelError, match=r"weights '.*nope\.h5': is neither 'imagenet', 'none' nor an existing file"):
        search(study="w", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path, n_trials=1,
               weights=str(tmp_path / "nope.h5"))
    assert not (tmp_path / "w" / "study.db").exists()


@pytest.mark.parametrize("name", ["tpe", "random", "qmc", "cmaes"])
def test_samplers_sample_the_space(name, tiny_run, tmp_path):
    from lepidopt.search._optuna_space import suggest

    study = optuna.create_study(sampler=make_sampler(name, seed=0), direction="maximize")
    for _ in range(4):
        trial = study.ask()
        params = suggest(trial, tiny_run.space)
        assert ("head.units" in params) == (params["head.dense_layers"] == 1)
        study.tell(trial, float(params["head.lr"]))


def test_gp_sampler_needs_torch_or_works():
    try:
        import torch  # noqa: F401
    except ImportError:
        from lepidopt.errors import MissingExtraError

        with pytest.raises(MissingExtraError, match=r"pip install 'lepidopt\[gp\]'"):
            make_sampler("gp", seed=0)
    else:
        assert make_sampler("gp", seed=0) is not None


@pytest.mark.parametrize("name", ["median", "hyperband", "sh", "none"])
def test_pruners(name):
    assert make_pruner(name, max_steps=10, warmup_steps=3) is not None


def test_the_baseline_is_enqueued_once_even_when_the_study_is_reopened(tiny_run):
    first = create_or_load_study(tiny_run)
    again = create_or_load_study(tiny_run)
    waiting = again.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs == {"lepidopt:baseline": True}
    assert first.study_name == again.study_name == "e"
