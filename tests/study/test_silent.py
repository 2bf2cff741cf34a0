"""A running trial that never wrote a heartbeat (its worker died between taking it and its first heartbeat, or
lost the answer while the storage was down) is failed and retried one grace period after a sweep first saw it,
on every storage with a heartbeat; a live trial's own heartbeat keeps it."""

import time

import optuna
import pytest

from lepidopt.study import Heartbeat, open_storage
from test_grpc import free_port, serve


@pytest.fixture(params=["sqlite", "postgresql", "grpc"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/silent.db"
    elif request.param == "postgresql":
        yield request.getfixturevalue("postgres_url")
    else:
        port = free_port()
        server = serve(f"sqlite:///{tmp_path}/proxied.db", port)
        yield f"grpc://127.0.0.1:{port}"
        server.stop(0)


def states(study) -> list[str]:
    return [t.state.name for t in study.get_trials()]


def test_a_trial_that_never_beat_is_failed_one_grace_period_after_a_sweep_first_saw_it(url):
    storage = open_storage(url, heartbeat=Heartbeat(interval=1, grace=2, retries=1))
    study = optuna.create_study(study_name="s", storage=storage)
    silent = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # no heartbeat thread: it never beats
    live = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    time.sleep(2.5)  # older than the grace period, and never judged: Optuna's sweep skips trials without a beat
    optuna.storages.fail_stale_trials(study)
    assert states(study) == ["RUNNING", "RUNNING"]  # the sweep starts their clocks instead
    for _ in range(7):  # past the grace period by more than a second: SQLite's clock has whole seconds
        time.sleep(0.5)
        storage.record_heartbeat(live._trial_id)  # the live trial's worker beats on its own
    optuna.storages.fail_stale_trials(study)
    dead, alive, retry = study.get_trials()
    assert (dead.number, alive.number) == (silent.number, live.number)
    assert (dead.state.name, alive.state.name, retry.state.name) == ("FAIL", "RUNNING", "WAITING")
    assert retry.params == dead.params and retry.system_attrs["failed_trial"] == dead.number
