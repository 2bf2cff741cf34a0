"""Chaos soak: lepidopt workers on PostgreSQL run a study while a seeded chaos loop kills them, and the database
restarts once; then everything the study promises is checked.

    .venv/bin/python benchmarks/chaos.py [--workers 4] [--trials 200] [--kills 50] [--seed 0] [--epochs 40]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--no-restart] [--time-limit 3600]

N ``lepidopt worker`` processes (heartbeat every 2 s, grace 20 s, so a storage outage of up to 13 s is waited
out; a checkpoint after every epoch) run a study of M head trials (the tiny test space at 32 px, random
sampler, no pruning) on the drawn demo collection. Every 1 to 4 s (seeded) the chaos loop sends SIGKILL or
SIGTERM (even odds) to a worker that is running a trial (three times in four, one whose trial has reported an
epoch, so it has a checkpoint to resume from; the loop waits for one), and starts a new worker in its place;
workers that exit on their own are replaced too while the study is short of its total. Halfway through the kills the
PostgreSQL server restarts (pg_ctlcluster restart -m fast; root only). Once the kills are done, the remaining
workers finish; a dead worker's trial still running then is taken over by one more worker started after the
grace period, as a requeued cluster job would.

Checks, each a count of violations:
  total         the study holds exactly M finished trials
  left          no trial RUNNING or WAITING
  twice         no trial (its retry chain, by its root) and no parameter set finished twice
  resumed       every retried trial went on from its predecessor's last checkpoint: at or after the
                predecessor's last reported step, its steps without gap or repeat
  checkpoints   no checkpoint left in the study's trials/ folder
  cache         every feature cache entry matches its recorded shape and checksum
  exit          every signalled worker exits within 60 s (one that does not is sent SIGABRT: its log
                holds every thread's stack)
Goal: zero violations over at least 200 trials and 50 kills.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from postgres import create_database, drop_database  # noqa: E402

SPACE = {
    "name": "chaos",
    "description": "The tiny test space: 32 px, random weights, heads only.",
    "fixed": {"image_size": 32, "batch_size": 16, "epochs_head": 8, "epochs_finetune": 1, "weights": "none",
              "head.batchnorm": True, "finetune.unfreeze": "none"},
    "params": {"head.dense_layers": {"int": [0, 1]},
               "head.units": {"choice": [8, 16], "when": {"head.dense_layers": [1]}},
               "head.lr": {"float": [1.0e-3, 1.0e-2], "log": True},
               "sampling.ratio": {"float": [0.3, 1.0]}},
    "baseline": {"head.dense_layers": 0, "head.lr": 5.0e-3, "sampling.ratio": 1.0},
}
WORKER_OPTIONS = ["--heartbeat", "2", "--grace", "20", "--checkpoint-every", "0"]
GRACE = 20
# Share of kills aimed at a worker whose trial has reported an epoch (and so saved a checkpoint), waiting for one
# if need be; the others hit any busy worker, often in a trial's set-up, which for these small trials and a
# newly started worker is most of its time.
MID_TRAINING = 0.75
SIGNALLED_EXIT = 60  # seconds a worker may take to exit after SIGTERM or SIGKILL


class Database:
    def __init__(self, server: str) -> None:
        self.server = server
        self.name, self.url = create_database(server, "lepidopt_chaos")
        self.cluster = self._cluster()

    def _cluster(self) -> list[str] | None:
        """The local cluster's version and name, when this process may restart it."""
        from urllib.parse import urlsplit

        server = urlsplit(self.server)
        if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None or server.hostname not in ("127.0.0.1",
                                                                                               "localhost"):
            return None
        listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout.split("\n")
        for line in listed:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == str(server.port or 5432):
                return fields[:2]
        return None

    def restart(self) -> float:
        started = time.monotonic()
        assert self.cluster is not None
        subprocess.run(["pg_ctlcluster", *self.cluster, "restart", "-m", "fast"], check=True, capture_output=True)
        return time.monotonic() - started

    def drop(self) -> None:
        drop_database(self.server, self.name)


def trials(url: str) -> list:
    """The study's trials, read again until the database answers (it may be restarting)."""
    import optuna

    from lepidopt.study import open_storage

    for attempt in range(60):
        try:
            return optuna.load_study(study_name="chaos", storage=open_storage(url)).get_trials(deepcopy=False)
        except Exception:
            time.sleep(1)
    raise SystemExit("the database did not answer for 60 s")


def start_worker(url: str, log_folder: Path, number: int) -> subprocess.Popen:
    log = open(log_folder / f"worker-{number}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "lepidopt", "worker", "--study", "chaos", "--storage", url,
                             *WORKER_OPTIONS], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONFAULTHANDLER="1"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--postgres", default=os.environ.get("LEPIDOPT_TEST_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--no-restart", action="store_true", help="do not restart the database")
    parser.add_argument("--time-limit", type=float, default=3600, help="seconds the whole soak may take")
    parser.add_argument("--keep", help="keep the study folder and worker logs here")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from environment import print_environment

    from lepidopt.data import make_demo_collection

    print_environment()
    rng = random.Random(args.seed)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lepidopt-chaos-"))
    folder.mkdir(parents=True, exist_ok=True)
    database = Database(args.postgres)
    restart = database.cluster is not None and not args.no_restart
    print(f"chaos: {args.workers} workers, {args.trials} trials of {args.epochs} head epochs, {args.kills} kills, "
          f"seed {args.seed}, database restart {'once' if restart else 'skipped (needs root and pg_ctlcluster)'}; "
          f"{len(os.sched_getaffinity(0))} cores", flush=True)
    started = time.monotonic()
    try:
        make_demo_collection(folder / "images", scale=0.01, image_size=48, seed=3, manifest=True, minimum=12)
        space = dict(SPACE, fixed=dict(SPACE["fixed"], epochs_head=args.epochs))
        (folder / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
        subprocess.run([sys.executable, "-m", "lepidopt", "-q", "search", "--study", "chaos", "--data",
                        str(folder / "images"), "--space", str(folder / "space.yaml"), "--storage", database.url,
                        "--results-dir", str(folder / "results"), "--n-trials", str(args.trials), "--sampler",
                        "random", "--pruner", "none", "--create-only"], check=True)
        logs = folder / "logs"
        logs.mkdir(exist_ok=True)
        events = soak(args, database, restart, rng, logs, started)
        violations, checked = check(database.url, folder / "results" / "chaos", args.trials)
        violations["exit"] = events["hung"]
    finally:
        database.drop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"  {events['kills']} kills of workers in the middle of a trial ({events['sigkill']} SIGKILL, "
          f"{events['sigterm']} SIGTERM); {events['started']} workers started in all; exit codes of the others: "
          f"{events['exits']}; database restart: {events['restart']}", flush=True)
    print(f"  checked: {checked['trials']} trials stored ({checked['counted']} counted, {checked['failed']} failed, "
          f"{checked['surplus']} surplus); {checked['retries']} retries, {checked['resumed']} of them "
          f"from a checkpoint; {checked['cache']} feature cache entries", flush=True)
    total = sum(len(v) for v in violations.values())
    for name, found in violations.items():
        print(f"  {name:12} {len(found)} violations" + (f": {found[:5]}" if found else ""))
    print(f"chaos: {total} violations over {args.trials} trials and {events['kills']} kills in "
          f"{time.monotonic() - started:.0f} s")
    return 1 if total else 0


def soak(args: argparse.Namespace, database: Database, restart: bool, rng: random.Random, logs: Path,
         started: float) -> dict:
    """Run the workers under the chaos loop, then let the study finish; what happened."""
    from lepidopt.study import count_finished

    url = database.url
    number = 0
    workers: list[subprocess.Popen] = []
    events: dict = {"kills": 0, "sigkill": 0, "sigterm": 0, "started": 0, "exits": {}, "restart": "-", "hung": []}

    def spawn() -> None:
        nonlocal number
        workers.append(start_worker(url, logs, number))
        number += 1
        events["started"] += 1

    def finished() -> int:
        import optuna

        from lepidopt.study import open_storage

        for attempt in range(60):
            try:
                return count_finished(optuna.load_study(study_name="chaos", storage=open_storage(url)))
            except Exception:
                time.sleep(1)
        raise SystemExit("the database did not answer for 60 s")

    for _ in range(args.workers):
        spawn()
    while events["kills"] < args.kills and time.monotonic() - started < args.time_limit:
        time.sleep(rng.uniform(1, 4))
        for worker in [w for w in workers if w.poll() is not None]:
            workers.remove(worker)
            events["exits"][worker.returncode] = events["exits"].get(worker.returncode, 0) + 1
        now = trials(url)
        claimed = sum(t.state.name in ("RUNNING", "COMPLETE", "PRUNED") and not t.user_attrs.get("lepidopt:surplus")
                      for t in now)
        if finished() >= args.trials:
            break
        running = {t.user_attrs.get("worker", {}).get("pid"): t for t in now if t.state.name == "RUNNING"}
        busy = [w for w in workers if w.pid in running]
        training = [w for w in busy if running[w.pid].intermediate_values]  # a checkpoint to resume from
        aimed = training if rng.random() < MID_TRAINING else busy  # none training yet: no kill this time
        if aimed:
            victim = rng.choice(aimed)
            sent = rng.choice((signal.SIGKILL, signal.SIGTERM))
            victim.send_signal(sent)
            try:
                victim.wait(SIGNALLED_EXIT)
            except subprocess.TimeoutExpired:  # its log gets every thread's stack (faulthandler), then it is killed
                events["hung"].append(f"worker pid {victim.pid}, {sent.name}")
                victim.send_signal(signal.SIGABRT)
                victim.wait()
            workers.remove(victim)
            events["kills"] += 1
            events["sigkill" if sent == signal.SIGKILL else "sigterm"] += 1
        if restart and events["restart"] == "-" and events["kills"] >= args.kills // 2:
            events["restart"] = f"{database.restart():.1f} s"
        while len(workers) < args.workers and (claimed < args.trials or not workers):
            spawn()
    for worker in workers:  # the chaos is over: the study finishes
        worker.wait(max(args.time_limit - (time.monotonic() - started), 60))
        events["exits"][worker.returncode] = events["exits"].get(worker.returncode, 0) + 1
    while finished() < args.trials and time.monotonic() - started < args.time_limit:
        time.sleep(GRACE + 2)  # a dead worker's trial is stale after the grace period
        spawn()
        workers[-1].wait()
    return events


def check(url: str, study_folder: Path, total: int) -> tuple[dict[str, list], dict[str, int]]:
    """The violations of each check, and how many trials, retries and cache entries the checks covered."""
    import numpy as np
    import optuna

    from lepidopt.study import count_finished, open_storage

    study = optuna.load_study(study_name="chaos", storage=open_storage(url))
    every = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in every}
    done = [t for t in every if t.state.name in ("COMPLETE", "PRUNED") and not t.user_attrs.get("lepidopt:surplus")]
    violations: dict[str, list] = {name: [] for name in ("total", "left", "twice", "resumed", "checkpoints", "cache")}
    if count_finished(study) != total:
        violations["total"].append(f"{count_finished(study)} finished, not {total}")
    violations["left"] = [f"trial {t.number} {t.state.name}" for t in every if t.state.name in ("RUNNING", "WAITING")]
    roots: dict[int, int] = {}
    params: dict[str, int] = {}
    for trial in done:
        root = trial.user_attrs.get("lepidopt:root", trial.number)
        key = json.dumps(trial.params, sort_keys=True)
        if root in roots:
            violations["twice"].append(f"root {root}: trials {roots[root]} and {trial.number}")
        if key in params:
            violations["twice"].append(f"params of trials {params[key]} and {trial.number}")
        roots[root], params[key] = trial.number, trial.number
    ran = [t for t in every if not t.user_attrs.get("lepidopt:surplus") and t.datetime_start is not None]
    retries = resumed_retries = 0
    for trial in ran:  # a retry starts only once the run it retries has ended
        before_number = (trial.system_attrs.get("retry_history") or [None])[-1]
        if before_number is None:
            continue
        retries += 1
        resumed_retries += trial.user_attrs.get("resumed_from") is not None
        before = by_number[before_number]
        if before.datetime_complete is None or trial.datetime_start < before.datetime_complete:
            violations["twice"].append(f"trial {trial.number} started while trial {before_number} it retries ran")
        steps = sorted(trial.intermediate_values)
        if steps != list(range(len(steps))):
            violations["resumed"].append(f"trial {trial.number}: steps {steps}")
        if before.intermediate_values:
            last = max(before.intermediate_values)
            resumed = trial.user_attrs.get("resumed_from")
            if resumed is None or resumed["step"] < last:
                violations["resumed"].append(f"trial {trial.number} retries {before_number}, which reported step "
                                             f"{last}, from {resumed}")
    given_up = {t.user_attrs.get("lepidopt:root", t.number) for t in ran} - set(roots)  # retries used up
    left = [p for p in (study_folder / "trials").glob("*") if any(p.iterdir()) and int(p.name) not in given_up] \
        if (study_folder / "trials").exists() else []
    violations["checkpoints"] = [str(p.relative_to(study_folder)) for p in left]
    cache_entries = sorted((study_folder / "cache").rglob("features-*.npy"))
    for data in cache_entries:
        meta = json.loads(data.with_suffix(".json").read_text())
        array = np.load(data, mmap_mode="r")
        checksum = hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()
        if list(array.shape) != meta["shape"] or checksum != meta["sha256"]:
            violations["cache"].append(data.name)
    if given_up:
        print(f"  trials whose retries were used up (failed for good, their checkpoints kept): {sorted(given_up)}")
    checked = {"trials": len(every), "counted": count_finished(study),
               "surplus": sum(bool(t.user_attrs.get("lepidopt:surplus")) for t in every),
               "failed": sum(t.state.name == "FAIL" for t in every), "retries": retries, "resumed": resumed_retries,
               "cache": len(cache_entries)}
    return violations, checked


if __name__ == "__main__":
    raise SystemExit(main())
