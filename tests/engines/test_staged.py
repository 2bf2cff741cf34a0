"""The staged strategy: heads first, then fine-tuning for the best of them, as trials of one Optuna study that
resume and export like any other."""

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys

import optuna
import pytest
import yaml

from conftest import TINY_SPACE, wait_for_checkpoint
from lepidopt.engines import get_engine
from lepidopt.engines._staged import (check_staged, promote, stage_one_space, stage_two_root, stage_two_share,
                                     stage_two_space, start_from_parent)
from lepidopt.errors import SettingError, StudyError
from lepidopt.resolve import resolve_run
from lepidopt.results import export_best
from lepidopt.spaces import load_space
from lepidopt.study import attrs, count_finished, retry_trial

HEAD_EPOCHS, FINETUNE_EPOCHS = 3, 3


def test_stage_one_never_fine_tunes_and_stage_two_always_does():
    space = load_space(TINY_SPACE)
    one, two = stage_one_space(space), stage_two_space(space)
    assert [p.name for p in one.params] == ["head.dense_layers", "head.units", "head.lr", "sampling.ratio"]
    assert one.recipe({"head.lr": 0.01}).finetune_unfreeze == "none"
    assert two.param("finetune.unfreeze").values == ("conv5",)
    assert [p.name for p in two.params] == [p.name for p in space.params]


def test_stage_one_trains_no_fine_tuning_even_where_the_space_fixes_it(demo_folder, tmp_path):
    from lepidopt.engines._trial_setup import trial_recipe

    space = yaml.safe_load(TINY_SPACE.read_text())
    space["fixed"]["finetune.unfreeze"] = "conv5"
    space["params"] = {k: v for k, v in space["params"].items() if k != "finetune.unfreeze"}
    space["params"]["finetune.lr"].pop("when")
    space["baseline"] = {k: v for k, v in space["baseline"].items() if k != "finetune.unfreeze"}
    (tmp_path / "fixed.yaml").write_text(yaml.safe_dump(space))
    run = resolve_run(study="x", results_dir=tmp_path, data=str(demo_folder), space=str(tmp_path / "fixed.yaml"),
                      strategy="staged")
    check_staged(run)
    head = {"head.dense_layers": 0, "head.lr": 0.01, "sampling.ratio": 0.5}
    assert trial_recipe(run, head, stage_one_space(run.space)).finetune_unfreeze == "none"
    assert trial_recipe(run, {**head, "finetune.lr": 1e-5}, stage_two_space(run.space)).finetune_unfreeze == "conv5"


@pytest.fixture
def heads(demo_folder, tmp_path):
    """A staged run and a study of eight finished heads (values 0.1 ... 0.8), each with its checkpoint folder."""
    run = resolve_run(study="p", results_dir=tmp_path, data=str(demo_folder), space=str(TINY_SPACE),
                      strategy="staged")
    study = optuna.create_study(direction="maximize")
    for n in range(8):
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE, value=(n + 1) / 10, params={"head.lr": 0.001 * (n + 1)},
            distributions={"head.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)},
            user_attrs={attrs.STAGE: 1, attrs.ROOT: n, attrs.SEED: 100 + n}))
        folder = run.folder / "trials" / str(n)
        folder.mkdir(parents=True)
        (folder / "state.json").write_text(json.dumps({"phase": "head", "epoch": 2, "step": 2, "history": []}))
        (folder / "step-2.weights.npz").write_bytes(b"weights of head %d" % n)
    return run, study


def test_the_best_unpromoted_head_of_the_top_quarter_is_promoted_once_and_the_rest_forgotten(heads):
    run, study = heads
    assert promote(run, study, n_trials=None) == 7
    assert promote(run, study, n_trials=None) == 6  # the top quarter of eight: trials 7 and 6
    assert promote(run, study, n_trials=None) is None
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [(t.user_attrs[attrs.PARENT], t.user_attrs[attrs.STAGE], t.system_attrs["fixed_params"]) for t in waiting] == [
        (7, 2, {"head.lr": 0.008}), (6, 2, {"head.lr": 0.007})]
    kept = sorted(int(p.name) for p in (run.folder / "trials").iterdir())
    assert kept == [6, 7]  # heads outside the top quarter are trained again if they are ever promoted


def test_a_full_study_promotes_nothing(heads):
    run, study = heads
    assert promote(run, study, n_trials=8) is None
    assert promote(run, study, n_trials=9) == 7
    assert promote(run, study, n_trials=9) is None  # the waiting promotion takes the last place


def trial_of(value, seconds, state=optuna.trial.TrialState.COMPLETE, **user_attrs):
    """A trial that started ``seconds`` ago and, unless running, has just ended."""
    now = datetime.datetime.now()
    running = state == optuna.trial.TrialState.RUNNING
    return optuna.trial.FrozenTrial(
        number=0, trial_id=0, state=state, value=None if running else value, values=None,
        datetime_start=now - datetime.timedelta(seconds=seconds), datetime_complete=None if running else now,
        params={"head.lr": 0.001}, distributions={"head.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1)},
        user_attrs=user_attrs, system_attrs={}, intermediate_values={})


def test_stage_two_is_promoted_to_only_while_it_has_taken_no_more_time_than_stage_one(heads):
    run, study = heads  # eight heads that took no time
    for n in range(4):
        study.add_trial(trial_of(0.9 + n / 100, 5.0, **{attrs.STAGE: 1}))  # 20 s of heads
    assert promote(run, study, n_trials=None) == 11  # nothing spent in stage two yet
    study.ask()  # the promotion, started: it runs while heads finish
    study.add_trial(trial_of(0.95, 25.0, **{attrs.STAGE: 2, attrs.PARENT: 11}))  # 25 s, more than 20; a gain
    assert promote(run, study, n_trials=None) is None
    study.add_trial(trial_of(0.1, 12.0, **{attrs.STAGE: 1}))  # 32 s of heads
    assert promote(run, study, n_trials=None) == 10
    assert promote(run, study, n_trials=None) is None  # the waiting one counts as stage two's mean, 25 s


def test_a_dead_worker_s_stage_two_counts_at_most_as_long_as_the_longest_finished_one(heads):
    run, study = heads
    for n in range(4):
        study.add_trial(trial_of(0.9 + n / 100, 10.0, **{attrs.STAGE: 1}))  # 40 s of heads
    study.add_trial(trial_of(0.95, 15.0, **{attrs.STAGE: 2, attrs.PARENT: 11}))  # better than its head, 0.93
    # Left running by a worker killed an hour ago on a storage without heartbeat, or on a clock an hour ahead:
    study.add_trial(trial_of(None, 3600.0, optuna.trial.TrialState.RUNNING, **{attrs.STAGE: 2, attrs.PARENT: 10}))
    assert promote(run, study, n_trials=None) == 9  # 15 + 15 s of stage two against 40 s of heads


def test_stage_two_s_share_shrinks_while_its_trials_end_no_better_than_their_heads():
    study = optuna.create_study(direction="maximize")
    study.add_trial(trial_of(0.8, 1.0, **{attrs.STAGE: 1}))  # trial 0, the head of every stage two below
    share = lambda: stage_two_share(study.get_trials(deepcopy=False), maximize=True)  # noqa: E731
    assert share() == 0.5  # nothing ended in stage two: the most, as much as stage one
    study.add_trial(trial_of(0.7, 9.0, **{attrs.STAGE: 2, attrs.PARENT: 0}))
    assert share() == 0.5 * 1 / 2
    study.add_trial(trial_of(0.8, 9.0, **{attrs.STAGE: 2, attrs.PARENT: 0}))  # level with its head: no gain
    study.add_trial(trial_of(0.9, 9.0, optuna.trial.TrialState.PRUNED, **{attrs.STAGE: 2, attrs.PARENT: 0}))
    study.add_trial(trial_of(None, 9.0, optuna.trial.TrialState.RUNNING, **{attrs.STAGE: 2, attrs.PARENT: 0}))
    study.add_trial(trial_of(None, 0.0, optuna.trial.TrialState.PRUNED,
                             **{attrs.STAGE: 2, attrs.PARENT: 0, attrs.SURPLUS: True}))  # never ran
    assert share() == 0.5 * 1 / 4  # three ended, none a gain (the pruned one stopped above its head's 0.8);
    # the running and the surplus one do not count
    for _ in range(3):
        study.add_trial(trial_of(0.9, 9.0, **{attrs.STAGE: 2, attrs.PARENT: 0}))
    assert share() == 0.5 * 4 / 7
    for _ in range(30):
        study.add_trial(trial_of(0.1, 9.0, **{attrs.STAGE: 2, attrs.PARENT: 0}))
    assert share() == 0.1  # never below the least
    assert stage_two_share(study.get_trials(deepcopy=False), maximize=False) == 0.5 * 32 / 37  # lower is better


def test_stage_two_that_does_not_pay_gives_its_time_back_to_the_heads(heads):
    run, study = heads
    for n in range(4):
        study.add_trial(trial_of(0.9 + n / 100, 10.0, **{attrs.STAGE: 1}))  # 40 s of heads
    study.add_trial(trial_of(0.9, 15.0, **{attrs.STAGE: 2, attrs.PARENT: 11}))  # below its head's 0.93
    assert promote(run, study, n_trials=None) is None  # 15 s is more than a quarter of 55 s
    study.add_trial(trial_of(0.1, 30.0, **{attrs.STAGE: 1}))
    assert promote(run, study, n_trials=None) == 10  # 15 s of 85 s; 11 was promoted already


def test_only_the_heads_next_in_line_keep_their_checkpoints(heads):
    run, study = heads
    for n in range(16):  # 24 heads: the top quarter is six, and the best four unpromoted keep their checkpoints
        study.add_trial(trial_of(0.9 + n / 100, 1.0, **{attrs.STAGE: 1, attrs.ROOT: 8 + n}))
        (run.folder / "trials" / str(8 + n)).mkdir(parents=True)
    study.add_trial(trial_of(0.5, 100.0, **{attrs.STAGE: 2, attrs.PARENT: 23}))  # no time left for stage two
    assert promote(run, study, n_trials=None) is None
    # 23 is promoted (its stage two takes its checkpoint); 22 to 19 are next in line; 18 is in the top six.
    assert sorted(int(p.name) for p in (run.folder / "trials").iterdir()) == [19, 20, 21, 22, 23]


def test_a_stage_two_trial_starts_from_its_parent_s_head_or_trains_it_again(heads):
    run, study = heads
    promote(run, study, n_trials=None)
    promote(run, study, n_trials=None)
    first, second = study.ask(), study.ask()  # the two promotions, as workers take them
    folder = run.folder / "trials" / str(first.number)
    assert start_from_parent(run, study, first, folder) == (107, True)
    assert (folder / "step-2.weights.npz").read_bytes() == b"weights of head 7"
    assert not (run.folder / "trials" / "7").exists()  # the head lives on in its stage two
    assert start_from_parent(run, study, first, folder) == (107, False)  # a retry goes on from its own checkpoint
    shutil.rmtree(run.folder / "trials" / "6")
    elsewhere = run.folder / "trials" / str(second.number)
    assert start_from_parent(run, study, second, elsewhere) == (106, False) and not elsewhere.exists()
    assert stage_two_root(study, first) == first.number and stage_two_root(study, second) == second.number
    study.enqueue_trial({"head.lr": 0.008}, user_attrs={attrs.STAGE: 2, attrs.PARENT: 7})
    assert stage_two_root(study, study.ask()) is None  # a second promotion of trial 7's head, by a racing worker


def test_a_stage_two_killed_before_it_recorded_its_root_is_retried_as_its_own_chain(heads):
    """A worker killed between taking a stage-two trial and recording its root: the retry Optuna enqueues has the
    same parent and a higher number, and is the same chain, not a second promotion of the head."""
    run, study = heads
    promote(run, study, n_trials=None)
    killed = study.ask()
    study.tell(killed, state=optuna.trial.TrialState.FAIL)  # as the heartbeat's sweep fails it
    retry_trial(study, killed.number, retries=3)
    retry = study.ask()
    assert retry.number > killed.number and retry.user_attrs[attrs.PARENT] == 7
    assert stage_two_root(study, retry) == killed.number


def heads_only_space(tmp_path):
    space = yaml.safe_load(TINY_SPACE.read_text())
    space["params"] = {k: v for k, v in space["params"].items() if not k.startswith("finetune.")}
    space["baseline"] = {k: v for k, v in space["baseline"].items() if not k.startswith("finetune.")}
    (tmp_path / "heads.yaml").write_text(yaml.safe_dump(space))
    return str(tmp_path / "heads.yaml")


def test_a_staged_search_is_refused_where_it_cannot_work(demo_folder, tmp_path):
    run = resolve_run(study="h", results_dir=tmp_path, data=str(demo_folder), space=heads_only_space(tmp_path),
                      strategy="staged")
    with pytest.raises(SettingError, match=r"strategy='staged': fine-tunes the best heads, and space 'tiny' never "
                       r"fine-tunes .* set strategy= to joint"):
        get_engine(run.engine).check(run)
    with pytest.raises(SettingError, match=r"strategy='staged': is Optuna's: Keras Tuner's oracles"):
        resolve_run(study="k", results_dir=tmp_path, data=str(demo_folder), space=str(TINY_SPACE), strategy="staged",
                    engine="keras-tuner")
    with pytest.raises(SettingError, match=r"strategy='stages': must be one of joint, staged"):
        resolve_run(study="s", results_dir=tmp_path, data=str(demo_folder), space=str(TINY_SPACE), strategy="stages")


def test_optuna_stages_a_space_that_searches_whether_to_fine_tune_by_default(demo_folder, tmp_path):
    def default(space, **options):
        return resolve_run(study="d", results_dir=tmp_path, data=str(demo_folder), space=space, **options).strategy

    assert default(str(TINY_SPACE)) == "staged"  # finetune.unfreeze: none or conv5
    assert default("demo") == "staged" and default("resnet50") == "staged"
    assert default(heads_only_space(tmp_path)) == "joint"
    always = yaml.safe_load(TINY_SPACE.read_text())  # fine-tunes every recipe: stage one's heads are not in it
    always["params"]["finetune.unfreeze"] = {"choice": ["conv5"]}
    (tmp_path / "always.yaml").write_text(yaml.safe_dump(always, sort_keys=False))
    assert default(str(tmp_path / "always.yaml")) == "joint"
    assert default(str(tmp_path / "always.yaml"), strategy="staged") == "staged"
    assert default(str(TINY_SPACE), strategy="joint") == "joint"
    assert default(str(TINY_SPACE), engine="keras-tuner") == "joint"


def test_a_study_recorded_before_strategies_resumes_joint(demo_folder, tmp_path):
    from lepidopt.api import search as search_in_process

    search_in_process(study="old", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path,
                      create_only=True)
    path = tmp_path / "old" / "run.yaml"
    recorded = yaml.safe_load(path.read_text())
    assert recorded["strategy"] == "staged"
    del recorded["strategy"]
    path.write_text(yaml.safe_dump(recorded, sort_keys=False))
    assert resolve_run(study="old", results_dir=tmp_path).strategy == "joint"
    with pytest.raises(StudyError, match="was created with strategy = 'joint', not 'staged'"):
        resolve_run(study="old", results_dir=tmp_path, strategy="staged")


def search(*args, cwd) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "lepidopt", "search", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_staged_study_killed_in_stage_two_resumes_it_and_exports_it_to_its_value(demo_folder, tmp_path):
    space = yaml.safe_load(TINY_SPACE.read_text())
    space["fixed"].update(epochs_head=HEAD_EPOCHS, epochs_finetune=FINETUNE_EPOCHS)
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    command = ("--study", "st", "--data", str(demo_folder), "--space", str(tmp_path / "space.yaml"), "--strategy",
               "staged", "--pruner", "none", "--n-trials", "8", "--checkpoint-every", "0")
    first = search(*command, cwd=tmp_path)
    # Six heads (one per searched param) finish before the best of them is promoted; stage two fine-tunes it.
    saved = wait_for_checkpoint(tmp_path / "results" / "st", step=HEAD_EPOCHS + 1)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    assert saved["history"][-1]["phase"] == "finetune"

    second = search(*command, cwd=tmp_path)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert "stage 2: fine-tunes the head of trial" in out

    study = optuna.load_study(study_name="st", storage=f"sqlite:///{tmp_path}/results/st/study.db")
    trials = study.get_trials(deepcopy=False)
    assert count_finished(study) == 8
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    interrupted = next(t for t in trials if t.state.name == "FAIL")
    assert interrupted.user_attrs[attrs.STAGE] == 2 and str(interrupted.number) == saved["trial"]
    retry = next(t for t in trials if t.system_attrs.get(attrs.RETRY_HISTORY) == [interrupted.number])
    parent = next(t for t in trials if t.number == retry.user_attrs[attrs.PARENT])
    assert retry.state.name == "COMPLETE"
    assert retry.user_attrs[attrs.PARENT] == interrupted.user_attrs[attrs.PARENT]
    assert parent.user_attrs[attrs.STAGE] == 1 and parent.state.name == "COMPLETE"
    assert retry.user_attrs[attrs.SEED] == parent.user_attrs[attrs.SEED]
    assert {k: retry.params[k] for k in parent.params} == parent.params
    assert retry.params["finetune.unfreeze"] == "conv5"
    # Resumed after the fine-tuning epoch its first run saved: every step once, the head's as its parent had them.
    assert retry.user_attrs[attrs.RESUMED_FROM] == {"phase": "finetune", "epoch": saved["epoch"],
                                                    "step": saved["step"]}
    history = retry.user_attrs[attrs.HISTORY]
    assert [h["step"] for h in history] == list(range(HEAD_EPOCHS + FINETUNE_EPOCHS))
    assert [h["phase"] for h in history] == ["head"] * HEAD_EPOCHS + ["finetune"] * FINETUNE_EPOCHS
    assert history[:HEAD_EPOCHS] == parent.user_attrs[attrs.HISTORY]
    assert sorted(retry.intermediate_values) == list(range(HEAD_EPOCHS + FINETUNE_EPOCHS))
    stages = [t.user_attrs.get(attrs.STAGE) for t in trials if t.state.name == "COMPLETE"]
    assert stages.count(1) == 7 and stages.count(2) == 1

    exported = export_best(study="st", results_dir=tmp_path / "results", trial=retry.number)
    metrics = json.loads((exported.folder / "metrics.json").read_text())
    assert metrics["trial"] == retry.number
    assert metrics["retrained_validation_value"] == pytest.approx(retry.value, abs=1e-6)


def test_the_strategy_defines_the_study(demo_folder, tmp_path):
    from lepidopt.api import search as search_in_process

    search_in_process(study="d", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path,
                      strategy="staged", create_only=True)
    with pytest.raises(StudyError, match="strategy cannot change within a study"):
        search_in_process(study="d", results_dir=tmp_path, strategy="joint", create_only=True)


@pytest.mark.slow
def test_a_staged_search_without_checkpoints_trains_a_promoted_head_again(demo_folder, tmp_path):
    from lepidopt.api import search as search_in_process
    from lepidopt.engines import TrialPolicy
    from lepidopt.workers import WorkerSettings

    summary = search_in_process(study="nc", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path,
                                pruner="none", n_trials=8, workers=WorkerSettings(policy=TrialPolicy(checkpoints=False)))
    assert summary.run.strategy == "staged"
    study = optuna.load_study(study_name="nc", storage=f"sqlite:///{tmp_path}/nc/study.db")
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(finished) == 8
    two = [t for t in finished if t.user_attrs[attrs.STAGE] == 2]
    assert two, [t.user_attrs.get(attrs.STAGE) for t in finished]
    for trial in two:
        parent = next(t for t in trials if t.number == trial.user_attrs[attrs.PARENT])
        head = parent.user_attrs[attrs.HISTORY]
        assert trial.user_attrs[attrs.HISTORY][:len(head)] == head  # the same head, trained again
        assert trial.user_attrs[attrs.SEED] == parent.user_attrs[attrs.SEED]
    assert not (tmp_path / "nc" / "trials").exists() or not any((tmp_path / "nc" / "trials").iterdir())
