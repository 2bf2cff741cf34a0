"""A worker's storage waits out an outage: real PostgreSQL behind a TCP gate the tests close and open."""

import re
import threading
import time
from urllib.parse import urlsplit

import optuna
import sqlalchemy
import pytest

from conftest import POSTGRES
from lepidopt.engines._optuna import OptunaReporter
from lepidopt.errors import SettingError, StorageError, StorageOutage
from lepidopt.study import (Heartbeat, StorageUnavailable, StorageUnreachable, existing_storage, open_storage,
                            without_waiting)
from lepidopt.study._patience import is_connection_error
from tcp_gate import TcpGate


@pytest.fixture
def gate():
    server = urlsplit(POSTGRES)
    opened = TcpGate(server.hostname, server.port or 5432)
    yield opened
    opened.close()


@pytest.fixture
def gated_url(postgres_url, gate):
    server = urlsplit(POSTGRES)
    return postgres_url.replace(server.netloc, f"{server.username}@127.0.0.1:{gate.port}")


def patient_study(url: str, *, outage: float):
    storage = open_storage(url, heartbeat=Heartbeat(interval=1, grace=60, outage=outage))
    return optuna.create_study(study_name="s", storage=storage, direction="maximize")


def reopen_after(gate: TcpGate, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, gate.open)
    timer.start()
    return timer


def test_a_call_waits_for_the_database_to_come_back(gated_url, gate, caplog):
    study = patient_study(gated_url, outage=30)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    gate.close()
    reopen_after(gate, 2)
    started = time.monotonic()
    trial.report(0.5, 0)  # the storage is unreachable for 2 s of it
    assert time.monotonic() - started >= 1.5
    study.tell(trial, 0.5)
    assert [(t.state.name, t.intermediate_values) for t in study.get_trials()] == [("COMPLETE", {0: 0.5})]
    said = [r.getMessage() for r in caplog.records if r.name == "lepidopt"]
    assert len(said) == 2 and "unreachable" in said[0] and "waiting for it up to 30 s" in said[0], said
    assert re.search(r"answers again after [1-9] s", said[1]), said  # tries back off: 0.25, 0.5, 1, 2 s


def test_a_failure_the_next_try_mends_is_not_announced(gated_url, gate, caplog):
    study = patient_study(gated_url, outage=30)
    trial = study.ask()
    outage = study._storage._outage
    refusals = []

    def refused_once(error):  # the gate opens as the first refusal is counted: the next try is answered
        refusals.append(error)
        gate.open()
        return real(error)

    real, outage.failed = outage.failed, refused_once
    gate.close()
    trial.report(0.5, 0)
    assert study.get_trials()[0].intermediate_values == {0: 0.5}
    assert len(refusals) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "lepidopt"] == []


def test_past_the_outage_limit_the_worker_gives_up_and_every_later_call_at_once(gated_url, gate):
    study = patient_study(gated_url, outage=1)
    trial = study.ask()
    gate.close()
    with pytest.raises(StorageUnreachable, match=r"unreachable for 1 s \(.*\)") as gone:
        trial.report(0.5, 0)
    assert f"127.0.0.1:{gate.port}" in gone.value.storage
    assert not isinstance(gone.value, Exception)  # neither a trial's error handling nor Optuna catches it
    gate.open()
    started = time.monotonic()
    with pytest.raises(StorageUnreachable):
        study.get_trials()
    assert time.monotonic() - started < 1
    study._storage.record_heartbeat(trial._trial_id)  # the heartbeat thread is never the one to raise


def test_a_call_without_waiting_raises_at_once_and_the_outage_still_counts(gated_url, gate):
    study = patient_study(gated_url, outage=1.5)
    trial = study.ask()
    gate.close()
    started = time.monotonic()
    with pytest.raises(StorageUnavailable), without_waiting():
        trial.report(0.5, 0)
    assert time.monotonic() - started < 1
    time.sleep(1.6)
    with pytest.raises(StorageUnreachable), without_waiting():
        trial.report(0.5, 0)


def test_a_trial_trains_on_while_the_database_is_down_and_its_reports_arrive_in_order(gated_url, gate):
    study = patient_study(gated_url, outage=30)
    trial = study.ask()
    reporter = OptunaReporter(trial, judge_from=0)
    reporter.report(0.1, 0)
    gate.close()
    started = time.monotonic()
    reporter.report(0.2, 1)
    reporter.report(0.3, 2)
    assert not reporter.should_stop()  # not judged on what the storage does not hold
    assert time.monotonic() - started < 2  # nothing waited for the storage
    assert reporter.undelivered == [(0.2, 1), (0.3, 2)]
    reopen_after(gate, 1)
    reporter.deliver()
    assert reporter.undelivered == []
    assert study.get_trials()[0].intermediate_values == {0: 0.1, 1: 0.2, 2: 0.3}


def test_other_errors_are_not_waited_for(gated_url):
    study = patient_study(gated_url, outage=30)
    trial = study.ask()
    study.tell(trial, 1.0)
    started = time.monotonic()
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        study._storage.set_trial_user_attr(trial._trial_id, "late", 1)
    assert time.monotonic() - started < 1


def test_a_storage_restarted_between_calls_is_reconnected_without_an_outage(gated_url, gate, caplog):
    study = patient_study(gated_url, outage=30)
    study.ask()
    gate.close()  # every pooled connection dropped
    gate.open()
    assert len(study.get_trials()) == 1  # the pool tests a connection before it is used (pre-ping)
    assert "unreachable" not in caplog.text


def test_the_outage_limit_defaults_to_what_the_heartbeat_allows_and_is_refused_beyond():
    assert Heartbeat().outage == 300 - 60 - 15
    assert Heartbeat(interval=1, grace=3).outage == 0
    with pytest.raises(SettingError) as refused:
        Heartbeat(interval=60, grace=180, outage=200)
    assert str(refused.value) == (
        "outage=200: a worker waits for its storage at most grace=180 less interval=60 less 15 s, 105 s (from 0): "
        "longer, and the other workers take its trial for dead while it still waits. Lower it, or raise the grace "
        "period (grace=275).")
    with pytest.raises(SettingError, match="outage=-1"):
        Heartbeat(outage=-1)


def test_a_give_up_while_optuna_stores_a_trial_s_end_ends_the_worker_with_a_storage_outage(gated_url, gate):
    from lepidopt.engines import get_engine
    from lepidopt.errors import StorageOutage
    from lepidopt.workers._in_process import interruptible

    study = patient_study(gated_url, outage=1)

    def objective(trial):
        gate.close()  # Optuna stores the trial's end on a storage that is gone
        return 1.0

    with pytest.raises(StorageOutage) as ended, interruptible(get_engine("optuna"), study, retries=0):
        study.optimize(objective, n_trials=1, catch=(Exception,))
    assert ended.value.exit_code == 11
    assert "did not answer for 1 s" in str(ended.value)


def test_a_trial_end_stored_before_its_connection_broke_counts_as_stored(gated_url, gate, monkeypatch):
    study = patient_study(gated_url, outage=30)
    trial = study.ask()
    inner = study._storage._inner
    real = inner.set_trial_state_values

    def stored_then_lost(trial_id, state, values=None):
        real(trial_id, state, values)  # the commit went through; then the connection broke before the answer
        monkeypatch.setattr(inner, "set_trial_state_values", real)
        gate.close()
        gate.open()
        raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(inner, "set_trial_state_values", stored_then_lost)
    study.tell(trial, 0.5)  # the second try is refused, as the trial is finished: it counts as stored
    assert [(t.state.name, t.value) for t in study.get_trials()] == [("COMPLETE", 0.5)]


def test_a_worker_that_starts_while_the_database_restarts_waits_for_it(gated_url, gate):
    patient_study(gated_url, outage=30)
    gate.hang_up()
    reopen_after(gate, 2)
    started = time.monotonic()
    storage = existing_storage(gated_url, "s", heartbeat=Heartbeat(interval=1, grace=60, outage=30))
    assert time.monotonic() - started >= 1.5
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["s"]
    gate.hang_up()
    with pytest.raises(StorageOutage, match=r"did not answer for 1 s .*nothing was started.*Check the host, port"):
        existing_storage(gated_url, "s", heartbeat=Heartbeat(interval=1, grace=60, outage=1))  # exit code 11
    gate.close()  # no answer at all: a wrong host or port looks the same, and is refused at once
    started = time.monotonic()
    with pytest.raises(StorageError, match="Connection refused"):
        existing_storage(gated_url, "s", heartbeat=Heartbeat(interval=1, grace=60, outage=30))
    assert time.monotonic() - started < 5


def test_a_lost_connection_is_waited_for_whatever_the_values_of_its_statement_say():
    lost = sqlalchemy.exc.OperationalError("UPDATE trial_user_attributes SET value_json=%(v)s",
                                           {"v": '"file does not exist"'}, Exception("server closed the connection"))
    refused = sqlalchemy.exc.OperationalError("connect", {}, Exception('FATAL:  database "x" does not exist'))
    assert is_connection_error(lost) and not is_connection_error(refused)


def test_a_database_that_does_not_exist_is_refused_at_once_not_waited_for(postgres_server):
    started = time.monotonic()
    with pytest.raises(StorageError, match="does not exist"):
        existing_storage(f"{POSTGRES}/lepidopt_no_such_database", "s", heartbeat=Heartbeat(interval=1, grace=60))
    assert time.monotonic() - started < 5
