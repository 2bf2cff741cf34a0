"""The Keras Tuner engine's own parts: the space as HyperParameters, Hyperband's budgets, resume after a
kill (real processes), and a distributed search with a chief and a worker on localhost."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from conftest import TINY_SPACE, wait_for_checkpoint, write_space
from lepidopt.errors import SpaceError
from lepidopt.recipe import Recipe
from lepidopt.api import search
from lepidopt.study import open_storage
from lepidopt.engines._keras_tuner import within_budget
from lepidopt.engines._keras_tuner_space import active_params, check_keras_tuner_space, keras_tuner_space
from lepidopt.spaces import Choice, Space, load_space


def study_trials(folder: Path, name: str):
    storage = open_storage(f"sqlite:///{folder / name / 'study.db'}")
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_when_conditions_become_conditional_scopes_and_the_baseline_the_defaults():
    space = load_space(str(TINY_SPACE))
    hp = keras_tuner_space(space)
    assert [p.name for p in hp.space] == [p.name for p in space.params]
    assert hp.values == {k: v for k, v in space.baseline.items()}  # the defaults, active ones only
    units = next(p for p in hp.space if p.name == "head.units")
    assert [(c.name, c.values) for c in units.conditions] == [("head.dense_layers", [1])]
    hp.values["head.dense_layers"] = 1
    assert hp.is_active("head.units")
    assert active_params(space, {**hp.values, "head.units": 8}) == {**hp.values, "head.units": 8}
    assert "head.units" not in active_params(space, {**hp.values, "head.dense_layers": 0, "head.units": 8})
    lr = next(p for p in hp.space if p.name == "head.lr")
    assert (lr.sampling, lr.min_value, lr.max_value) == ("log", 1e-3, 1e-2)


def test_a_choice_of_mixed_types_is_refused_with_the_fix():
    space = Space(name="hand-made", params=(Choice(name="weights", values=("none", 1)),))
    with pytest.raises(SpaceError, match=r"space 'hand-made', params.weights.choice: Keras Tuner's Choice needs values "
                                         r"of one type, got \['none', 1\]\. Make them all strings, all numbers or all "
                                         r"booleans, or use engine='optuna'"):
        check_keras_tuner_space(space)


@pytest.mark.parametrize("epochs, head, finetune", [(1, 1, 0), (3, 3, 0), (5, 3, 2), (20, 3, 6)])
def test_hyperband_budgets_cut_the_recipe_head_epochs_first(epochs, head, finetune):
    cut = within_budget(Recipe(epochs_head=3, epochs_finetune=6, finetune_unfreeze="conv5"), epochs)
    assert (cut.epochs_head, cut.epochs_finetune) == (head, finetune)


@pytest.mark.slow
def test_hyperband_trials_train_their_budget_and_record_it(demo_folder, tmp_path):
    summary = search(study="h", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path, n_trials=5,
                     engine="keras-tuner", tuner="hyperband")
    trials = study_trials(tmp_path, "h")
    assert len(trials) == 5 and {t.state.name for t in trials} == {"COMPLETE"}
    budgets = [t.user_attrs["keras_tuner:epochs"] for t in trials]
    assert max(budgets) <= 4 and min(budgets) < 4  # the tiny space trains at most 3 + 1 epochs
    for trial in trials:
        recipe = Recipe.from_flat(trial.user_attrs["recipe"])
        assert len(trial.user_attrs["history"]) == recipe.total_epochs <= trial.user_attrs["keras_tuner:epochs"]
    assert [t.epochs for t in summary.status.trials] == budgets


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_search_resumes_its_trial_from_the_checkpoint(signal_number, demo_folder, tmp_path):
    command = [sys.executable, "-m", "lepidopt", "search", "--study", "k", "--data", str(demo_folder),
               "--space", str(write_space(tmp_path, epochs_head=150)), "--results-dir", str(tmp_path),
               "--engine", "keras-tuner", "--tuner", "random", "--n-trials", "2", "--checkpoint-every", "0"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    saved = wait_for_checkpoint(tmp_path / "k", step=5)
    trial_id = saved["trial"].removeprefix("kt-")
    first.send_signal(signal_number)
    _, err = first.communicate(timeout=60)
    if signal_number == signal.SIGTERM:
        assert first.returncode == 143, err[-2000:]
        assert "interrupted by SIGTERM: Keras Tuner runs its trial again, from its last checkpoint; run the same " \
               "command again to go on." in err
    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert f"keras tuner trial {trial_id} resumes after its head epoch" in second.stderr
    trials = study_trials(tmp_path, "k")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"], [t.user_attrs.get("fail_reason") for t in trials]
    resumed = next(t for t in trials if t.user_attrs["keras_tuner:trial_id"] == trial_id)
    assert resumed.user_attrs["resumed_from"]["step"] >= saved["step"]
    assert sorted(resumed.intermediate_values) == list(range(150))  # no gap, no repeat
    oracle_trials = [json.loads(p.read_text()) for p in (tmp_path / "k" / "keras_tuner").glob("trial_*/trial.json")]
    assert sorted(t["status"] for t in oracle_trials) == ["COMPLETED", "COMPLETED"]
    assert not list((tmp_path / "k" / "trials").glob("kt-*/state.json"))  # checkpoints removed when done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_chief_and_a_worker_on_localhost_share_one_keras_tuner_search(demo_folder, tmp_path):
    search(study="d", data=str(demo_folder), space=str(write_space(tmp_path, epochs_head=3)), results_dir=tmp_path,
           n_trials=3, engine="keras-tuner", tuner="random", create_only=True)
    storage = f"sqlite:///{tmp_path / 'd' / 'study.db'}"
    port = str(free_port())

    def start(tuner_id: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "lepidopt", "worker", "--study", "d", "--storage", storage,
                                 "--engine", "keras-tuner", "--tuner-id", tuner_id, "--oracle-ip", "127.0.0.1",
                                 "--oracle-port", port], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    chief, worker = start("chief"), start("tuner0")
    worker_out, worker_err = worker.communicate(timeout=600)
    chief_out, chief_err = chief.communicate(timeout=120)
    assert (worker.returncode, chief.returncode) == (0, 0), (worker_err[-3000:], chief_err[-3000:])
    assert "worker ran 3 trials" in worker_out and "worker ran 0 trials" in chief_out
    assert "tuner id chief" in chief_err and "tuner id tuner0" in worker_err
    trials = study_trials(tmp_path, "d")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert {t.user_attrs["worker"]["pid"] for t in trials} == {worker.pid}
    assert sorted(t.user_attrs["keras_tuner:trial_id"] for t in trials) == ["0", "1", "2"]


@pytest.mark.parametrize("engine, flags, code, message", [
    ("keras-tuner", [], 6, "Keras Tuner worker: needs --tuner-id, --oracle-ip, --oracle-port"),
    ("keras-tuner", ["--tuner-id", "tuner0", "--oracle-ip", "127.0.0.1", "--oracle-port", "70000"], 2,
     "--oracle-port 70000: must be a TCP port"),
    ("keras-tuner", ["--engine", "optuna"], 6, "its engine is keras-tuner, not optuna"),
    ("optuna", ["--tuner-id", "chief"], 6, "its engine is optuna; --tuner-id, --oracle-ip and --oracle-port are for "
                                           "Keras Tuner studies"),
])
def test_a_worker_without_its_place_in_the_search_is_refused(engine, flags, code, message, demo_folder, tmp_path,
                                                            capsys, monkeypatch):
    from lepidopt.cli import main

    for name in [k for k in os.environ if k.startswith("KERASTUNER_")]:
        monkeypatch.delenv(name)
    search(study="w", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path, n_trials=1, engine=engine,
           create_only=True)
    capsys.readouterr()
    assert main(["worker", "--study", "w", "--storage", f"sqlite:///{tmp_path / 'w' / 'study.db'}", *flags]) == code
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_a_trial_imported_before_a_kill_is_not_trained_again(demo_folder, tmp_path):
    from types import SimpleNamespace

    from lepidopt.resolve import resolve_run
    from lepidopt.api import TrialPolicy
    from lepidopt.study import open_study
    from lepidopt.trial import StudyData
    from lepidopt.engines._keras_tuner import _Trials

    search(study="i", data=str(demo_folder), space=str(write_space(tmp_path, epochs_head=3)), results_dir=tmp_path,
           n_trials=1, engine="keras-tuner", tuner="random")
    study = open_study(study="i", results_dir=tmp_path).study
    done = study.trials[0]
    trials = _Trials(resolve_run(study="i", results_dir=tmp_path), study, StudyData(split=None, cache_dir=tmp_path),
                     policy=TrialPolicy(), deadline=None)
    rerun = SimpleNamespace(trial_id=done.user_attrs["keras_tuner:trial_id"],
                            hyperparameters=SimpleNamespace(values=dict(done.params)))
    assert trials.run_one(rerun) == done.value  # no split given: training would fail
    assert len(study.trials) == 1
