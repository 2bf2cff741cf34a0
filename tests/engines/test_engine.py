"""The Optuna engine on a real SQLite study: pruning acts on per-epoch reports, failures are kept."""

import subprocess
import sys

import optuna
import pytest
import yaml

from conftest import TINY_SPACE, write_space
from lepidopt.errors import ModelError
from lepidopt.resolve import resolve_run
from lepidopt.api import Recycling, WorkerSettings, search
from lepidopt.engines import TrialPolicy, get_engine
from lepidopt.study import attrs, create_study, open_storage
from lepidopt.trial import study_data
from lepidopt.engines import make_pruner
from lepidopt.engines._optuna import clear_ended_checkpoints, make_sampler, optimize


@pytest.fixture
def tiny_run(demo_folder, tmp_path):
    return resolve_run(study="e", results_dir=tmp_path, data=str(demo_folder), space=str(TINY_SPACE))


@pytest.mark.slow
def test_pruning_acts_on_the_reported_epochs(tiny_run):
    create_study(tiny_run, initialize=get_engine(tiny_run.engine).initialize)
    study = optuna.load_study(
        study_name="e", storage=f"sqlite:///{tiny_run.folder}/study.db",
        pruner=optuna.pruners.ThresholdPruner(lower=1.01, n_warmup_steps=1),  # nothing reaches 1.01
    )
    optimize(tiny_run, study, study_data(tiny_run), n_trials=1, timeout=None)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert sorted(trial.intermediate_values) == [0, 1]
    assert [h["step"] for h in trial.user_attrs["history"]] == [0, 1]


@pytest.mark.slow
def test_a_trial_asked_after_another_worker_claimed_the_last_place_is_surplus_and_not_run(demo_folder, tmp_path):
    run = resolve_run(study="s", results_dir=tmp_path, data=str(demo_folder), space=str(write_space(tmp_path)),
                      sampler="random", pruner="none")
    study = create_study(run, initialize=get_engine(run.engine).initialize)
    other_worker = optuna.load_study(study_name="s", storage=open_storage(run.storage))
    ran = []

    def claim_the_last_place(_study, trial) -> None:  # after this process counted the claims, before it asks again
        ran.append(trial.number)
        other_worker.ask()

    get_engine(run.engine).run_trials(run, study, study_data(run), n_trials=2, timeout=None, policy=TrialPolicy(),
                                      on_trial=claim_the_last_place)
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE", "RUNNING", "PRUNED"]
    assert ran == [0]  # the surplus trial is not handed on
    assert trials[2].user_attrs[attrs.SURPLUS] and "history" not in trials[2].user_attrs


@pytest.mark.slow
def test_a_failing_trial_is_kept_with_its_reason_and_the_study_goes_on(demo_folder, tmp_path):
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(b"not weights")
    space = yaml.safe_load(TINY_SPACE.read_text())
    space["fixed"].pop("weights")
    space["params"] = {"weights": {"choice": ["none", str(broken)]}, **space["params"]}
    space["baseline"]["weights"] = str(broken)
    space["baseline"]["finetune.unfreeze"] = "none"
    space["baseline"].pop("finetune.lr")
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    summary = search(study="f", data=str(demo_folder), space=str(path), results_dir=tmp_path, n_trials=2,
                     sampler="random", pruner="none", seed=1)
    states = [t.state for t in summary.status.trials]
    assert states[0] == "FAIL" and summary.status.n_finished == 2
    assert "ModelError: weights file" in summary.status.trials[0].note and "broken.weights.h5" in summary.status.trials[0].note


def test_a_signal_before_the_trial_trains_leaves_it_for_a_retry(demo_folder, tmp_path, monkeypatch):
    """SIGTERM between a trial's start and its first epoch (while its attributes are written): the trial is
    failed with the reason and enqueued again with its parameters, as one stopped in the middle of training."""
    import signal

    from lepidopt._signals import Interrupted
    from lepidopt.engines import _optuna
    from lepidopt.errors import WorkerInterrupted

    def signalled(*args, **kwargs):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(_optuna, "set_up_trial", signalled)
    with pytest.raises(WorkerInterrupted, match=r"trial 0 will be retried from its start \(it had saved no checkpoint\)") as stopped:
        search(study="i", data=str(demo_folder), space=str(write_space(tmp_path)), results_dir=tmp_path, n_trials=1)
    assert stopped.value.exit_code == 143
    trials = optuna.load_study(study_name="i", storage=f"sqlite:///{tmp_path}/i/study.db").trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[0].user_attrs[attrs.FAIL_REASON] == "interrupted by SIGTERM"
    assert trials[1].params == trials[0].params and trials[1].system_attrs["retry_history"] == [0]
    assert trials[1].user_attrs[attrs.ROOT] == 0  # the retry keeps the first run's seed and checkpoint folder


def test_a_missing_weights_file_stops_the_search_before_any_trial(demo_folder, tmp_path):
    with pytest.raises(ModelError, match=r"weights '.*nope\.h5': is neither 'imagenet', 'none' nor an existing file"):
        search(study="w", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path, n_trials=1,
               weights=str(tmp_path / "nope.h5"))
    assert not (tmp_path / "w" / "study.db").exists()


@pytest.mark.parametrize("name", ["tpe", "random", "qmc", "cmaes"])
def test_samplers_sample_the_space(name, tiny_run, tmp_path):
    from lepidopt.engines._optuna_space import suggest

    study = optuna.create_study(sampler=make_sampler(name, seed=0), direction="maximize")
    for _ in range(4):
        trial = study.ask()
        params = suggest(trial, tiny_run.space)
        assert ("head.units" in params) == (params["head.dense_layers"] == 1)
        study.tell(trial, float(params["head.lr"]))


def _torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


@pytest.mark.skipif(_torch_installed(), reason="PyTorch is installed: the GP sampler is tested to sample instead")
def test_the_gp_sampler_without_torch_names_the_extra():
    from lepidopt.errors import MissingExtraError

    with pytest.raises(MissingExtraError, match=r"sampler 'gp': .* pip install 'lepidopt\[gp\]'"):
        make_sampler("gp", seed=0)


@pytest.mark.skipif(not _torch_installed(), reason="needs PyTorch (pip install 'lepidopt[gp]')")
def test_the_gp_sampler_samples_the_space(tiny_run):
    from lepidopt.engines import suggest_optuna

    study = optuna.create_study(sampler=make_sampler("gp", seed=0), direction="maximize")
    for _ in range(3):
        trial = study.ask()
        params = suggest_optuna(trial, tiny_run.space)
        assert ("head.units" in params) == (params["head.dense_layers"] == 1)
        study.tell(trial, float(params["head.lr"]))


def _pruned_at(pruner, bad: list[float]) -> list[int]:
    """The steps at which ``pruner`` would stop a trial reporting ``bad`` after six trials that reported 1.0 at
    every step of ten, asking the pruner as lepidopt's trials do."""
    study = optuna.create_study(study_name="pruning", pruner=pruner, direction="maximize")  # Hyperband's brackets
    for _ in range(6):
        good = study.ask()
        for step in range(10):
            good.report(1.0, step)
            good.should_prune()
        study.tell(good, 1.0)
    trial = study.ask()
    stopped = []
    for step, value in enumerate(bad):
        trial.report(value, step)
        if trial.should_prune():
            stopped.append(step)
    return stopped


@pytest.mark.parametrize("name", ["median", "hyperband", "sh", "none"])
def test_no_pruner_stops_a_trial_before_the_warm_up_and_each_stops_a_bad_one_after(name):
    stopped = _pruned_at(make_pruner(name, max_steps=10, warmup_steps=3), [0.0] * 10)
    assert all(step >= 3 for step in stopped)
    if name == "none":
        assert stopped == []
    else:
        assert stopped, f"{name} never stopped a trial far below six others"


def test_an_unknown_sampler_or_pruner_names_the_choices():
    from lepidopt.errors import SettingError

    with pytest.raises(SettingError, match=r"sampler='bayes': must be one of tpe, gp, cmaes, random, qmc"):
        make_sampler("bayes", seed=0)
    with pytest.raises(SettingError, match=r"pruner='asha': must be one of median, hyperband, sh, none"):
        make_pruner("asha", max_steps=10, warmup_steps=3)


def test_the_same_search_started_twice_at_once_creates_the_study_once(demo_folder, tmp_path):
    space = str(write_space(tmp_path))
    command = [sys.executable, "-m", "lepidopt", "search", "--study", "twice", "--data", str(demo_folder), "--space",
               space, "--n-trials", "2", "--create-only"]
    both = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    assert sum("study 'twice' created" in err for _, err in outputs) == 1
    study = optuna.load_study(study_name="twice", storage=f"sqlite:///{tmp_path}/results/twice/study.db")
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert len(study.trials) == 1 and waiting[0].user_attrs == {"lepidopt:baseline": True}


@pytest.mark.slow
def test_trial_processes_are_replaced_without_losing_or_repeating_a_trial(demo_folder, tmp_path):
    space = yaml.safe_load(TINY_SPACE.read_text())
    space["fixed"].update({"epochs_head": 1, "finetune.unfreeze": "none"})
    space["params"] = {k: v for k, v in space["params"].items() if not k.startswith("finetune.")}
    space["baseline"] = {k: v for k, v in space["baseline"].items() if not k.startswith("finetune.")}
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    summary = search(study="r", data=str(demo_folder), space=str(path), results_dir=tmp_path, n_trials=5,
                     sampler="random", pruner="none",
                     workers=WorkerSettings(recycling=Recycling(max_trials_per_process=2)))
    assert [t.number for t in summary.status.trials] == [0, 1, 2, 3, 4]
    assert {t.state for t in summary.status.trials} == {"COMPLETE"}
    study = optuna.load_study(study_name="r", storage=f"sqlite:///{tmp_path}/r/study.db")
    pids = [t.user_attrs["worker"]["pid"] for t in study.trials]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]  # two trials per process, then a fresh one
    assert len(set(pids)) == 3

    summary = search(study="r", results_dir=tmp_path, n_trials=7,
                     workers=WorkerSettings(recycling=Recycling(max_rss="1MB")))  # every process is above 1 MB
    study = optuna.load_study(study_name="r", storage=f"sqlite:///{tmp_path}/r/study.db")
    assert len(study.trials) == 7
    assert len({t.user_attrs["worker"]["pid"] for t in study.trials[5:]}) == 2


def test_process_limits_must_be_positive():
    from lepidopt.errors import SettingError

    with pytest.raises(SettingError, match="max_trials_per_process=0: must be at least 1"):
        Recycling(max_trials_per_process=0)
    with pytest.raises(SettingError, match="max_rss='0GB': must be a positive size"):
        Recycling(max_rss="0GB")
    assert Recycling(max_rss="1.5GB").max_rss == int(1.5 * 2**30)


@pytest.mark.slow
def test_a_trial_s_checkpoints_are_removed_only_once_its_end_is_stored(demo_folder, tmp_path):
    run = resolve_run(study="s", results_dir=tmp_path, data=str(demo_folder), space=str(write_space(tmp_path)),
                      sampler="random", pruner="none")
    study = create_study(run, initialize=get_engine(run.engine).initialize)
    store, ends = study._storage.set_trial_state_values, []

    def set_trial_state_values(trial_id, state, values=None):
        if state.is_finished():  # a worker killed after this write must find the checkpoints still there
            ends.append((state.name, bool(list((run.folder / "trials").glob("*/state.json")))))
        return store(trial_id, state, values)

    study._storage.set_trial_state_values = set_trial_state_values
    get_engine(run.engine).run_trials(run, study, study_data(run), n_trials=1, timeout=None,
                                      policy=TrialPolicy(head_checkpoint_every=0))
    assert ends == [("COMPLETE", True)]
    assert not list((run.folder / "trials").glob("*/state.json"))


def test_checkpoints_a_dead_worker_left_after_its_trial_s_end_are_cleared(demo_folder, tmp_path):
    run = resolve_run(study="s", results_dir=tmp_path, data=str(demo_folder), space=str(write_space(tmp_path)))
    study = optuna.create_study()
    state = optuna.trial.TrialState
    made = [(state.COMPLETE, {}), (state.PRUNED, {}), (state.COMPLETE, {attrs.STAGE: 1}),  # a head kept for stage 2
            (state.FAIL, {}), (state.RUNNING, {attrs.ROOT: 3}),  # trial 3's retry is running
            (state.FAIL, {}), (state.COMPLETE, {attrs.ROOT: 5})]  # trial 5's retry completed
    for trial_state, user_attrs in made:
        study.add_trial(optuna.trial.create_trial(state=trial_state, user_attrs=user_attrs,
                                                  value=None if trial_state != state.COMPLETE else 1.0))
    for root in (0, 1, 2, 3, 5):  # a retry keeps its first run's folder
        (run.folder / "trials" / str(root)).mkdir(parents=True)
        (run.folder / "trials" / str(root) / "state.json").write_text("{}")
    clear_ended_checkpoints(run, study)
    assert sorted(int(p.name) for p in (run.folder / "trials").iterdir()) == [2, 3]
