"""`status` counts as --n-trials counts and says what became of every trial, on a real SQLite study."""

import optuna

from conftest import write_space
from lepidopt.api import format_status, search, status
from lepidopt.study import open_storage
from lepidopt.study import count_finished
from lepidopt.study import retry_trial


def test_an_interrupted_trial_and_its_waiting_retry_are_counted_as_search_counts(demo_folder, tmp_path):
    search(study="s", data=str(demo_folder), space=str(write_space(tmp_path)), results_dir=tmp_path, n_trials=3,
           create_only=True)
    study = optuna.load_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path}/s/study.db"))
    trial = study.ask()  # the baseline, as a worker interrupted by Ctrl-C leaves it
    trial.set_user_attr("fail_reason", "interrupted by SIGINT")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    retry_trial(study, trial.number, retries=3)

    st = status(study="s", results_dir=tmp_path)
    assert [t.state for t in st.trials] == ["FAIL", "WAITING"] and st.n_finished == 0
    shown = format_status(st)
    assert shown.startswith("study s: 2 trials, 0 of 3 finished;")
    assert "trial 0 failed: interrupted by SIGINT; retried as trial 1 (not counted)" in shown
    assert "trial 1 waiting: retries trial 0 from its last checkpoint" in shown
    assert "trial 1 failed" not in shown
    assert st.n_finished == count_finished(study)  # the count --n-trials and search use


def test_the_dashboard_names_the_objective(demo_folder, tmp_path):
    search(study="m", data=str(demo_folder), space=str(write_space(tmp_path)), results_dir=tmp_path,
           objective="macro_f1", create_only=True)
    assert optuna.load_study(study_name="m", storage=f"sqlite:///{tmp_path}/m/study.db").metric_names == ["macro_f1"]
