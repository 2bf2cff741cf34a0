"""Optuna's gRPC storage proxy as lepidopt serves and uses it: a real server in front of a real database."""

import socket
import threading
import time
from urllib.parse import urlsplit

import optuna
import pytest

from conftest import POSTGRES
from lepidopt.cli import main
from lepidopt.errors import StorageError
from lepidopt.study import Heartbeat, StorageUnavailable, open_storage, without_waiting
from lepidopt.study import _storage
from lepidopt.study._grpc import make_proxy_server, proxied_storage
from tcp_gate import TcpGate


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(url: str, port: int):
    server = make_proxy_server(proxied_storage(open_storage(url)), "127.0.0.1", port, threads=4)
    server.start()
    return server


@pytest.fixture
def proxy(tmp_path):
    port = free_port()
    server = serve(f"sqlite:///{tmp_path}/proxied.db", port)
    yield port
    server.stop(0)


def test_a_dead_worker_s_trial_behind_the_proxy_is_failed_and_retried_by_optuna_s_sweep(proxy):
    storage = open_storage(f"grpc://127.0.0.1:{proxy}", heartbeat=Heartbeat(interval=1, grace=2, retries=1))
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(trial._trial_id)
    optuna.storages.fail_stale_trials(study)
    assert [t.state.name for t in study.get_trials()] == ["RUNNING"]  # its heartbeat is fresh
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    dead, retry = study.get_trials()
    assert (dead.state.name, retry.state.name) == ("FAIL", "WAITING")
    assert retry.params == dead.params and retry.system_attrs["failed_trial"] == dead.number
    assert study.ask().number == retry.number  # claimed; it holds its predecessor's heartbeat, copied by Optuna
    optuna.storages.fail_stale_trials(study)
    assert [t.state.name for t in study.get_trials()] == ["FAIL", "RUNNING"]  # not taken for dead by that one


def test_a_worker_waits_for_the_proxy_to_restart(tmp_path):
    port = free_port()
    server = serve(f"sqlite:///{tmp_path}/proxied.db", port)
    storage = open_storage(f"grpc://127.0.0.1:{port}", heartbeat=Heartbeat(interval=1, grace=60, outage=30))
    study = optuna.create_study(study_name="s", storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    server.stop(0).wait()
    restarted = []
    threading.Timer(2, lambda: restarted.append(serve(f"sqlite:///{tmp_path}/proxied.db", port))).start()
    started = time.monotonic()
    trial.suggest_float("x", 0, 1)  # the restarted proxy has not seen this trial yet
    assert time.monotonic() - started >= 1.5
    study.tell(trial, 1.0)
    study.ask()
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "RUNNING"]
    restarted[0].stop(0)


def test_the_proxy_answers_unavailable_while_its_database_is_down_and_workers_wait(postgres_url):
    server_url = urlsplit(POSTGRES)
    gate = TcpGate(server_url.hostname, server_url.port or 5432)
    port = free_port()
    server = serve(postgres_url.replace(server_url.netloc, f"{server_url.username}@127.0.0.1:{gate.port}"), port)
    try:
        storage = open_storage(f"grpc://127.0.0.1:{port}", heartbeat=Heartbeat(interval=1, grace=60, outage=30))
        study = optuna.create_study(study_name="s", storage=storage)
        gate.close()
        with pytest.raises(StorageUnavailable, match="the proxy's database is unreachable"), without_waiting():
            study.ask()
        threading.Timer(2, gate.open).start()
        trial = study.ask()
        study.tell(trial, 1.0)
        assert [t.state.name for t in study.get_trials()] == ["COMPLETE"]
    finally:
        server.stop(0)
        gate.close()


def test_no_proxy_at_the_address_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_storage, "_GRPC_READY", 0.5)
    port = free_port()
    with pytest.raises(StorageError) as refused:
        open_storage(f"grpc://127.0.0.1:{port}")
    assert str(refused.value).startswith(f"storage 'grpc://127.0.0.1:{port}': no storage proxy answers at "
                                         f"127.0.0.1:{port} within 0.5 s. Start it with lepidopt storage-proxy")


@pytest.mark.parametrize("url, message", [
    ("grpc://db-proxy", "storage 'grpc://db-proxy': a gRPC storage URL is grpc://HOST:PORT"),
    ("grpc://db-proxy:99999", "storage 'grpc://db-proxy:99999': a gRPC storage URL is grpc://HOST:PORT"),
])
def test_a_malformed_grpc_url_is_refused(url, message):
    with pytest.raises(StorageError, match=message.replace("(", r"\(")):
        open_storage(url)


def test_the_proxy_refuses_a_journal_file_and_a_taken_port(tmp_path, capsys):
    assert main(["storage-proxy", "--storage", f"journal:{tmp_path}/j.log"]) == 2
    assert "the storage proxy serves a database" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = main(["storage-proxy", "--storage", f"sqlite:///{tmp_path}/p.db", "--host", "127.0.0.1",
                     "--port", str(port)])
    assert code == 7
    assert f"storage proxy on 127.0.0.1:{port}: cannot listen there" in capsys.readouterr().err
