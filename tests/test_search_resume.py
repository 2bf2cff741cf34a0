"""`lepidopt search` run as a user runs it: a real subprocess, a real SQLite study, run twice."""

import os
import subprocess
import sys

import optuna
import pytest
import yaml

from conftest import TINY_SPACE

pytestmark = pytest.mark.slow  # every test here trains


def lepidopt(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "lepidopt", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def test_a_second_run_resumes_the_study_continues_numbering_and_respects_the_total(demo_folder, tmp_path):
    first = lepidopt("search", "--data", str(demo_folder), "--space", str(TINY_SPACE), "--study", "s1",
                     "--n-trials", "2", "--pruner", "none", "--sampler", "random", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "best trial: #" in first.stdout

    folder = tmp_path / "results" / "s1"
    run = yaml.safe_load((folder / "run.yaml").read_text())
    assert run["space"]["name"] == "tiny" and run["sampler"] == "random" and run["storage"].startswith("sqlite:///")
    split_before = (folder / "split.json").read_text()

    # resume with only the study name: data and space come from run.yaml
    second = lepidopt("search", "--study", "s1", "--n-trials", "3", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    third = lepidopt("search", "--study", "s1", "--n-trials", "3", cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert "already holds 3 finished trials" in third.stderr

    study = optuna.load_study(study_name="s1", storage=f"sqlite:///{folder / 'study.db'}")
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert [bool(t.user_attrs.get("lepidopt:baseline")) for t in trials] == [True, False, False]
    baseline = yaml.safe_load(TINY_SPACE.read_text())["baseline"]
    # The staged default: the baseline's head comes first, its fine-tuning only if the head is promoted.
    assert trials[0].params == {k: v for k, v in baseline.items() if not k.startswith("finetune.")}
    assert [t.user_attrs["lepidopt:stage"] for t in trials] == [1, 1, 1]
    for t in trials:
        assert {"recipe", "history", "metrics", "timings", "n_train", "seed"} <= set(t.user_attrs)
        assert len(t.intermediate_values) == len(t.user_attrs["history"])
    assert (folder / "split.json").read_text() == split_before

    status = lepidopt("status", "--study", "s1", cwd=tmp_path)
    assert status.returncode == 0
    assert "study s1: 3 trials, 3 of 3 finished" in status.stdout and "0*" in status.stdout


def test_a_resume_may_not_change_what_defines_the_study(demo_folder, tmp_path):
    created = lepidopt("search", "--data", str(demo_folder), "--space", str(TINY_SPACE), "--study", "s2",
                       "--n-trials", "1", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    changed = lepidopt("search", "--study", "s2", "--space", "demo", "--n-trials", "2", cwd=tmp_path)
    assert changed.returncode == 6
    assert "the space 'demo' given differs from the space recorded in its run.yaml" in changed.stderr
    objective = lepidopt("search", "--study", "s2", "--objective", "loss", cwd=tmp_path)
    assert "was created with objective = 'balanced_accuracy', not 'loss'" in objective.stderr
    assert len(optuna.load_study(study_name="s2", storage=f"sqlite:///{tmp_path}/results/s2/study.db").trials) == 1
