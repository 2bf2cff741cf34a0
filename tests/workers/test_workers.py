"""Workers on a shared study: real processes, real storages (PostgreSQL, SQLite, a journal file),
killed with SIGKILL and stopped with SIGTERM, resumed from their checkpoints."""

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import optuna
import pytest
import yaml

from conftest import POSTGRES, wait_for_checkpoint, write_space
from lepidopt.api import format_status, search, status
from lepidopt.cli import main
from lepidopt.study import attrs, open_storage

FAST_HEARTBEAT = ["--heartbeat", "1", "--grace", "3"]


def create(demo_folder, tmp_path, storage: str, *, n_trials: int, **space) -> None:
    search(study="w", data=str(demo_folder), space=str(write_space(tmp_path, **space)), results_dir=tmp_path,
           storage=storage, n_trials=n_trials, sampler="random", pruner="none", create_only=True)


def start_worker(storage: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lepidopt", "worker", "--study", "w", "--storage", storage,
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def trials_of(storage):
    opened = open_storage(storage) if isinstance(storage, str) else storage
    return optuna.load_study(study_name="w", storage=opened).get_trials(deepcopy=False)


def counted(everything, *, workers: int) -> list:
    """The trials that count towards the total, after checking the rest: workers that ask at the same moment
    for the last place mark the higher numbers surplus, pruned and not run."""
    shown = [(t.number, t.state.name, t.user_attrs.get(attrs.SURPLUS)) for t in everything]
    surplus = [t for t in everything if t.user_attrs.get(attrs.SURPLUS)]
    assert len(surplus) < workers and all(t.state.name == "PRUNED" and not t.intermediate_values
                                          and "history" not in t.user_attrs for t in surplus), shown
    return [t for t in everything if not t.user_attrs.get(attrs.SURPLUS)]


def assert_resumed_without_gaps(trials, *, total: int, killed_step: int) -> None:
    states = [t.state.name for t in trials]
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and "retry_history" not in failed[0].system_attrs
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number)
    assert retry.state == optuna.trial.TrialState.COMPLETE, retry.user_attrs
    assert retry.user_attrs["resumed_from"]["step"] >= killed_step
    assert retry.user_attrs["seed"] == failed[0].user_attrs["seed"]
    assert sorted(retry.intermediate_values) == list(range(len(retry.intermediate_values)))  # no gap, no repeat
    assert [h["step"] for h in retry.user_attrs["history"]] == sorted(retry.intermediate_values)
    assert states.count("COMPLETE") == total


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_four_workers_finish_exactly_the_total(kind, demo_folder, tmp_path, request):
    storage = request.getfixturevalue("postgres_url") if kind == "postgresql" else f"sqlite:///{tmp_path}/w.db"
    create(demo_folder, tmp_path, storage, n_trials=8)
    workers = [start_worker(storage) for _ in range(4)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0], outputs
    everything = trials_of(storage)
    shown = [(t.number, t.state.name, t.user_attrs.get(attrs.SURPLUS)) for t in everything]
    trials = counted(everything, workers=4)
    assert [t.number for t in trials] == list(range(8)) and {t.state.name for t in trials} == {"COMPLETE"}, shown
    assert len({repr(sorted(t.params.items())) for t in trials}) == 8  # each worker draws recipes of its own
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(pids) >= 2 and pids <= {w.pid for w in workers}
    assert not list((tmp_path / "w" / "trials").glob("*/state.json"))  # checkpoints removed when trials end


def kill_a_worker_mid_trial(storage: str, tmp_path: Path) -> dict:
    """SIGKILL a worker once its trial saved its fifth epoch, and wait past the grace period; the checkpoint's
    state."""
    first = start_worker(storage, *FAST_HEARTBEAT, "--checkpoint-every", "0")
    saved = wait_for_checkpoint(tmp_path / "w", step=5)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    time.sleep(4)  # past the grace period: the trial's heartbeat has stopped
    return saved


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_killed_worker_s_trial_is_retried_from_its_checkpoint(kind, demo_folder, tmp_path, request):
    storage = request.getfixturevalue("postgres_url") if kind == "postgresql" else f"sqlite:///{tmp_path}/w.db"
    create(demo_folder, tmp_path, storage, n_trials=2, epochs_head=150)
    saved = kill_a_worker_mid_trial(storage, tmp_path)
    second = start_worker(storage, *FAST_HEARTBEAT, "--checkpoint-every", "0")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert f"resumes trial {saved['trial']}" in err
    assert_resumed_without_gaps(trials_of(storage), total=2, killed_step=saved["step"])


@pytest.mark.slow
def test_sigterm_leaves_the_trial_for_a_retry_and_exits_143(demo_folder, tmp_path, postgres_url):
    create(demo_folder, tmp_path, postgres_url, n_trials=1, epochs_head=150)
    first = start_worker(postgres_url, "--checkpoint-every", "0")
    saved = wait_for_checkpoint(tmp_path / "w", step=5)
    sent = time.monotonic()
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 143 and time.monotonic() - sent < 30, err[-3000:]
    last = json.loads((tmp_path / "w" / "trials" / saved["trial"] / "state.json").read_text())
    assert (f"interrupted by SIGTERM: trial {saved['trial']} will be retried from its checkpoint after "
            f"{last['phase']} epoch {last['epoch']};") in err
    trials = trials_of(postgres_url)
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert "interrupted by SIGTERM" in trials[0].user_attrs["fail_reason"]
    second = start_worker(postgres_url, "--checkpoint-every", "0")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert_resumed_without_gaps(trials_of(postgres_url), total=1, killed_step=saved["step"])
    shown = format_status(status(study="w", storage=postgres_url, results_dir=tmp_path))
    assert "trial 0 failed: interrupted by SIGTERM; retried as trial 1 (not counted)" in shown
    resumed = re.search(r"trial 1 resumed trial 0 after its head epoch (\d+)", shown)
    assert resumed and int(resumed.group(1)) >= saved["epoch"]


@pytest.mark.slow
def test_a_journal_study_is_recovered_by_hand_after_a_kill(demo_folder, tmp_path):
    storage = f"journal:{tmp_path}/w.journal"
    create(demo_folder, tmp_path, storage, n_trials=2, epochs_head=150)
    first = start_worker(storage, "--checkpoint-every", "0")
    saved = wait_for_checkpoint(tmp_path / "w", step=5)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    recovered = subprocess.run([sys.executable, "-m", "lepidopt", "recover", "--study", "w", "--storage", storage,
                                "--results-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert recovered.returncode == 0, recovered.stderr
    assert f"retried 1 trials: [{saved['trial']}]" in recovered.stdout
    second = start_worker(storage, "--checkpoint-every", "0")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    storage_object = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(f"{tmp_path}/w.journal"))
    assert_resumed_without_gaps(trials_of(storage_object), total=2, killed_step=saved["step"])


@pytest.mark.slow
def test_a_worker_stops_after_failures_in_a_row_quoting_the_last(demo_folder, tmp_path):
    space = yaml.safe_load(write_space(tmp_path).read_text())
    broken = [str(tmp_path / f"broken{i}.weights.h5") for i in range(2)]
    for path in broken:
        Path(path).write_bytes(b"not weights")  # every trial fails to load them
    space["fixed"].pop("weights")
    space["params"] = {"weights": {"choice": broken}, **space["params"]}
    space["baseline"]["weights"] = broken[0]
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    storage = f"sqlite:///{tmp_path}/w.db"
    search(study="w", data=str(demo_folder), space=str(path), results_dir=tmp_path, storage=storage, n_trials=10,
           sampler="random", create_only=True)
    result = subprocess.run([sys.executable, "-m", "lepidopt", "worker", "--study", "w", "--storage", storage,
                             "--max-failures", "2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 10
    assert "stopped after 2 failed trials in a row; the last failed with: ModelError: weights file" in result.stderr
    assert [t.state.name for t in trials_of(storage)] == ["FAIL", "FAIL"]


@pytest.mark.parametrize("storage, message", [
    ("postgresql://ann:secret@127.0.0.1:1/none", "storage 'postgresql://ann:***@127.0.0.1:1/none': cannot be opened"),
    ("sqlite:///{tmp}/absent.db", "absent.db' does not exist, so it holds no study 'w'"),
    ("journal:{tmp}/absent.journal", "absent.journal' does not exist"),
    ("postgres:/x", "not a storage URL lepidopt knows"),
])
def test_a_bad_storage_url_is_refused_clearly_and_creates_nothing(tmp_path, storage, message, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = storage.format(tmp=tmp_path)
    assert main(["worker", "--study", "w", "--storage", storage]) == 7
    err = capsys.readouterr().err
    assert message in err and "secret" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_study_missing_from_the_storage_names_the_ones_there(tmp_path, postgres_url, capsys):
    optuna.create_study(study_name="other", storage=open_storage(postgres_url))
    assert main(["worker", "--study", "w", "--storage", postgres_url]) == 6
    err = capsys.readouterr().err
    assert "study 'w': not in storage" in err and "which holds 'other'; nothing was created" in err


def test_an_empty_database_holds_no_study_and_is_left_empty(tmp_path, postgres_url, capsys):
    assert main(["worker", "--study", "w", "--storage", postgres_url]) == 6
    err = capsys.readouterr().err
    assert f"study 'w': not in storage '{postgres_url}', which holds no study; nothing was created" in err
    import psycopg2

    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("select count(*) from information_schema.tables where table_schema = 'public'")
        assert cursor.fetchone()[0] == 0


class PostgresCluster:
    """The local PostgreSQL server, stopped and started for real (Debian's pg_ctlcluster, as root)."""

    def __init__(self) -> None:
        server = urlsplit(POSTGRES)
        clusters = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout.split()
        rows = [clusters[i:i + 7] for i in range(0, len(clusters), 7)]
        local = server.hostname in ("127.0.0.1", "localhost")
        found = [r for r in rows if len(r) == 7 and r[2] == str(server.port or 5432)] if local else []
        if not found or os.geteuid() != 0:
            pytest.skip("needs the local PostgreSQL server's cluster (pg_ctlcluster) and root to stop it")
        self.version, self.name = found[0][:2]

    def __call__(self, action: str) -> None:
        subprocess.run(["pg_ctlcluster", self.version, self.name, action, *(["-m", "fast"] if action == "stop" else [])],
                       check=True, capture_output=True)

    def running(self) -> bool:
        return subprocess.run(["pg_ctlcluster", self.version, self.name, "status"], capture_output=True).returncode == 0


@pytest.fixture
def postgres_cluster(postgres_url):
    cluster = PostgresCluster()
    yield cluster
    if not cluster.running():
        cluster("start")


@pytest.mark.slow
def test_a_two_worker_study_survives_the_database_stopped_for_15_s(demo_folder, tmp_path, postgres_url,
                                                                  postgres_cluster):
    create(demo_folder, tmp_path, postgres_url, n_trials=3, epochs_head=150)
    workers = [start_worker(postgres_url, "--checkpoint-every", "0") for _ in range(2)]
    wait_for_checkpoint(tmp_path / "w", step=5)
    stopped = datetime.datetime.now()
    postgres_cluster("stop")
    time.sleep(15)
    postgres_cluster("start")
    outputs = [w.communicate(timeout=900) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-3000:] for _, err in outputs]
    everything = trials_of(postgres_url)
    trials = counted(everything, workers=2)
    shown = [(t.number, t.state.name) for t in everything]
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3, shown  # nothing failed, nothing run twice
    spanning = [t for t in trials if t.datetime_start < stopped < t.datetime_complete]
    assert spanning, "no trial was running while the database was down"
    for trial in spanning:  # trained on through the outage: every epoch stored once, in order
        assert sorted(trial.intermediate_values) == list(range(len(trial.intermediate_values)))
        assert [h["step"] for h in trial.user_attrs["history"]] == sorted(trial.intermediate_values)
    assert any("unreachable" in err and "answers again after" in err for _, err in outputs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_workers_behind_the_storage_proxy_finish_the_total_and_a_killed_one_s_trial_resumes(
        demo_folder, tmp_path, postgres_url):
    port = free_port()
    proxy = subprocess.Popen([sys.executable, "-m", "lepidopt", "storage-proxy", "--storage", postgres_url,
                              "--host", "127.0.0.1", "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline and proxy.poll() is None, "the storage proxy did not start"
            time.sleep(0.2)
        url = f"grpc://127.0.0.1:{port}"
        create(demo_folder, tmp_path, url, n_trials=3, epochs_head=150)
        saved = kill_a_worker_mid_trial(url, tmp_path)
        workers = [start_worker(url, *FAST_HEARTBEAT, "--checkpoint-every", "0") for _ in range(2)]
        outputs = [w.communicate(timeout=900) for w in workers]
        assert [w.returncode for w in workers] == [0, 0], [err[-3000:] for _, err in outputs]
        assert any(f"resumes trial {saved['trial']}" in err for _, err in outputs)
        assert_resumed_without_gaps(trials_of(postgres_url), total=3, killed_step=saved["step"])  # in the database
    finally:
        proxy.send_signal(signal.SIGTERM)
        _, err = proxy.communicate(timeout=60)
    assert proxy.returncode == 0, err[-3000:]
    assert "storage proxy stopping (SIGTERM)" in err


@pytest.mark.slow
def test_a_short_chaos_soak_loses_nothing(postgres_server):
    """benchmarks/chaos.py at a small size: workers killed with SIGKILL and SIGTERM mid-trial, the database
    restarted once (as root), and every check of the study at zero violations."""
    soak = subprocess.run([sys.executable, str(Path(__file__).parents[2] / "benchmarks" / "chaos.py"), "--workers", "3",
                           "--trials", "16", "--kills", "4", "--epochs", "40", "--seed", "1", "--postgres", POSTGRES,
                           "--time-limit", "900"], capture_output=True, text=True, timeout=1200)
    assert soak.returncode == 0, soak.stdout[-3000:] + soak.stderr[-3000:]
    assert re.search(r"chaos: 0 violations over 16 trials and [1-4] kills", soak.stdout), soak.stdout[-3000:]
    checked = re.search(r"checked: \d+ trials stored \(16 counted.*; (\d+) retries, (\d+) of them from a checkpoint; "
                        r"(\d+) feature cache entries", soak.stdout)
    assert checked and int(checked.group(1)) >= 1 and int(checked.group(3)) >= 1, soak.stdout[-3000:]  # not vacuous
