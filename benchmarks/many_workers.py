"""Many workers on one study: trials per second and efficiency for 1 to 32 worker processes on SQLite,
PostgreSQL, a journal file and Optuna's gRPC proxy (lepidopt storage-proxy in front of PostgreSQL).

    .venv/bin/python benchmarks/many_workers.py [--workers 1,4,16,32] [--storages sqlite,postgresql,journal,grpc]
        [--trial-seconds 2] [--trials-per-worker 6] [--postgres postgresql://postgres@127.0.0.1:5432]

Every worker is a process that opens the storage as a lepidopt worker does (open_storage with the heartbeat:
Optuna's heartbeat thread and stale-trial sweep, the outage wrapper, the heartbeat attribute behind the proxy)
and runs trials with the storage traffic of a lepidopt trial: TPE (lepidopt's default sampler) suggests the
demo space's params, the trial records its recipe, seed and worker, reports 4 epochs and asks lepidopt's
like-with-like median pruner after each from the second on (its verdict is not obeyed, so every trial costs the
same), records its history, timings and metrics, and the worker counts the study's claimed trials after each
trial to stop at the total, as lepidopt's loop does. The training is a sleep (``--trial-seconds`` split over the
epochs), so the figures are lepidopt + Optuna + the storage rather than training: the workers start together
once every one has opened the study. The rest of a trial (sampling, pruning, the storage's client and, on one
machine, its server) still needs the CPU: on 2 cores, 32 workers compete for them.

Efficiency = (seconds slept by all workers / workers) / wall seconds from the start to the last trial's end:
1.0 when the storage and the search cost nothing. "In storage": the seconds the workers' trial threads spent
inside the storage's methods (asking for a trial and the stale-trial sweep included) over the seconds from the
start to each worker's last trial's end; "overhead/trial": those seconds less the sleeps, per trial.

Then, per arm, each trial's CPU: the workers' (a worker's main thread inside the sampler, the pruner, the storage's
client and the rest; its other threads), the database server's (every postgres process and the backends it reaped)
and the proxy's; the share of the machine's cores busy; and the ceiling: the efficiency the cores allow at that CPU
per trial (cores / CPU per trial, over the trials per second the workers would run with free bookkeeping).

Goal: at least 85% efficiency at 32 workers with 2-second trials on PostgreSQL or the proxy (Ray Tune publishes
10,000 one-second trials on 16 cores in 715 s against an ideal of 625 s: 87%).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from cpu_seconds import CpuAccount, machine_seconds, process_seconds, server_seconds  # noqa: E402
from postgres import create_database, drop_database  # noqa: E402

EPOCHS = 4
WORKER_PARTS = ("sampler", "pruner", "storage", "other", "other threads")  # a worker's CPU, as its CpuAccount splits it


def child(args: argparse.Namespace) -> None:
    """One worker: open the study, say ready, wait for the start, run trials until the total is claimed."""
    import numpy as np
    import optuna

    from lepidopt.engines._optuna import make_sampler
    from lepidopt.engines._optuna_space import suggest
    from lepidopt.engines._pruning import make_pruner
    from lepidopt.spaces import load_space
    from lepidopt.study import Heartbeat, attrs, count_claimed, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(args.url, heartbeat=Heartbeat(), create=False)
    in_storage = [0.0]
    cpu = CpuAccount()
    storage_methods = [n for n in dir(optuna.storages.BaseStorage) if not n.startswith("_")] + ["_get_stale_trial_ids"]
    for name in storage_methods:
        method = getattr(storage, name, None)
        if callable(method):
            setattr(storage, name, _timed(method, in_storage))
    cpu.wrap_methods(storage, storage_methods, "storage")
    sampler = make_sampler("tpe", seed=args.index)
    cpu.wrap_methods(sampler, ["infer_relative_search_space", "sample_relative", "sample_independent", "before_trial",
                               "after_trial"], "sampler")
    pruner = make_pruner("median", max_steps=EPOCHS, warmup_steps=1, startup_trials=5)
    cpu.wrap_methods(pruner, ["prune"], "pruner")
    study = optuna.load_study(study_name="bench", storage=storage, sampler=sampler, pruner=pruner)
    space = load_space("demo")
    rng = np.random.default_rng(args.index)
    slept = [0.0]
    ended = [0.0]
    Path(args.ready).touch()
    while not Path(args.go).exists():
        time.sleep(0.005)
    began, in_storage[0] = time.time(), 0.0
    cpu.restart()
    process_began = time.process_time()

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space)
        trial.set_user_attr(attrs.RECIPE, dict(params, epochs_head=EPOCHS, **{"finetune.unfreeze": None}))
        trial.set_user_attr(attrs.SEED, trial.number)
        trial.set_user_attr(attrs.WORKER, {"host": socket.gethostname(), "pid": os.getpid()})
        value, history = 0.0, []
        for step in range(EPOCHS):
            time.sleep(args.trial_seconds / EPOCHS)
            slept[0] += args.trial_seconds / EPOCHS
            value = float(rng.uniform(0.3, 0.9) + 0.02 * step)
            history.append({"step": step, "val_balanced_accuracy": value, "loss": 1 - value, "seconds": 0.5})
            trial.report(value, step)
            if step >= 1:
                trial.should_prune()  # asked, as lepidopt asks, but not obeyed: every trial costs the same
        trial.set_user_attr(attrs.HISTORY, history)
        trial.set_user_attr(attrs.TIMINGS, {"head": args.trial_seconds})
        trial.set_user_attr(attrs.METRICS, {"balanced_accuracy": value, "accuracy": value})
        return value

    def stop_at_total(study_: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        ended[0] = time.time()
        if count_claimed(study_) >= args.total:
            study_.stop()

    study.optimize(objective, callbacks=[stop_at_total], catch=(Exception,))
    main_thread = cpu.totals()
    main_thread["other threads"] = time.process_time() - process_began - sum(main_thread.values())
    Path(args.out).write_text(json.dumps({"slept": slept[0], "storage": in_storage[0], "busy": ended[0] - began,
                                          "ended": ended[0], "cpu": main_thread,
                                          "storage_calls": cpu.calls["storage"]}))


def _timed(method, total):
    """``method``, adding the seconds the trial's own thread spends in it to ``total`` (the heartbeat thread's
    calls run beside the trial, not in its way)."""
    def call(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return method(*args, **kwargs)
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started
    return call


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Storages:
    """Each arm's storage, new and empty; a PostgreSQL database is dropped and the proxy stopped at the end."""

    def __init__(self, folder: Path, postgres: str) -> None:
        self.folder, self.postgres = folder, postgres
        self.databases: list[str] = []
        self.proxies: list[subprocess.Popen] = []

    def _database(self) -> str:
        name, url = create_database(self.postgres, "lepidopt_bench")
        self.databases.append(name)
        return url

    def new(self, kind: str) -> str:
        name = uuid.uuid4().hex[:8]
        if kind == "sqlite":
            return f"sqlite:///{self.folder}/{name}.db"
        if kind == "journal":
            return f"journal:{self.folder}/{name}.log"
        if kind == "postgresql":
            return self._database()
        if kind == "grpc":
            port = free_port()
            proxy = subprocess.Popen([sys.executable, "-m", "lepidopt", "-q", "storage-proxy", "--storage",
                                      self._database(), "--host", "127.0.0.1", "--port", str(port)])
            self.proxies.append(proxy)
            deadline = time.monotonic() + 60
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        return f"grpc://127.0.0.1:{port}"
                if time.monotonic() > deadline or proxy.poll() is not None:
                    raise SystemExit("the storage proxy did not start")
                time.sleep(0.2)
        raise SystemExit(f"unknown storage {kind!r}")

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.terminate()
            proxy.wait(60)
        for name in self.databases:
            drop_database(self.postgres, name)


def run_arm(kind: str, workers: int, args: argparse.Namespace, storages: Storages, folder: Path) -> dict:
    import optuna

    from lepidopt.study import open_storage

    url = storages.new(kind)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="bench", storage=open_storage(url), direction="maximize")
    total = workers * args.trials_per_worker
    arm = folder / f"{kind}-{workers}"
    arm.mkdir()
    go = arm / "go"
    processes = [subprocess.Popen([sys.executable, __file__, "--child", "--url", url, "--index", str(i),
                                   "--total", str(total), "--trial-seconds", str(args.trial_seconds),
                                   "--ready", str(arm / f"ready-{i}"), "--go", str(go),
                                   "--out", str(arm / f"{i}.json")])
                 for i in range(workers)]
    while sum((arm / f"ready-{i}").exists() for i in range(workers)) < workers:
        if any(p.poll() not in (None, 0) for p in processes):
            raise SystemExit(f"a worker failed to start ({kind}, {workers} workers)")
        time.sleep(0.05)
    proxy = storages.proxies[-1].pid if kind == "grpc" else None
    on_postgres = kind in ("postgresql", "grpc")
    server_before = server_seconds() if on_postgres else 0.0
    proxy_before = process_seconds(proxy) if proxy else 0.0
    machine_before = machine_seconds()
    started = time.time()
    go.touch()
    codes = [p.wait() for p in processes]
    time.sleep(0.5)  # the server's backends exit with their connections, and are reaped
    machine_after = machine_seconds()
    server = server_seconds() - server_before if on_postgres else 0.0
    proxied = process_seconds(proxy) - proxy_before if proxy else 0.0
    if any(codes):
        raise SystemExit(f"a worker failed ({kind}, {workers} workers): exit codes {codes}")
    records = [json.loads((arm / f"{i}.json").read_text()) for i in range(workers)]
    wall = max(r["ended"] for r in records) - started
    finished = optuna.load_study(study_name="bench", storage=open_storage(url)).get_trials(deepcopy=False)
    done = sum(t.state.name in ("COMPLETE", "PRUNED") for t in finished)
    failed = sum(t.state.name == "FAIL" for t in finished)
    ideal = sum(r["slept"] for r in records) / workers
    cpu = {part: sum(r["cpu"].get(part, 0.0) for r in records) / max(done, 1) for part in WORKER_PARTS}
    cpu.update({"server": server / max(done, 1), "proxy": proxied / max(done, 1)})
    cores = len(os.sched_getaffinity(0))
    per_trial = sum(cpu.values())
    return {"storage": kind, "workers": workers, "trials": done, "failed": failed, "wall": wall, "ideal": ideal,
            "efficiency": ideal / wall, "per_second": done / wall,
            "storage_share": sum(r["storage"] for r in records) / sum(r["busy"] for r in records),
            "overhead": (sum(r["busy"] for r in records) - sum(r["slept"] for r in records)) / max(done, 1),
            "cpu": cpu, "storage_calls": sum(r["storage_calls"] for r in records) / max(done, 1),
            "machine_busy": (machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1]),
            "ceiling": min(1.0, cores / per_trial * args.trial_seconds / workers) if per_trial else 1.0}


def print_cpu(rows: list[dict]) -> None:
    """Where each trial's CPU went, and the efficiency the machine's cores allow at that CPU per trial."""
    parts = (*WORKER_PARTS, "server", "proxy")
    print(f"\n  CPU ms per trial: a worker's main thread in the sampler, the pruner, the storage's client and the "
          f"rest; its other threads (heartbeat); the database server; the proxy. Ceiling: the efficiency the "
          f"{len(os.sched_getaffinity(0))} cores allow at that CPU per trial, were it spent without waiting.")
    print(f"  {'storage':10} {'workers':>7} " + " ".join(f"{p:>13}" for p in parts)
          + f" {'all':>6} {'machine busy':>12} {'ceiling':>7} {'storage calls/trial':>19}")
    for row in rows:
        print(f"  {row['storage']:10} {row['workers']:7d} " + " ".join(f"{row['cpu'][p] * 1000:13.0f}" for p in parts)
              + f" {sum(row['cpu'].values()) * 1000:6.0f} {row['machine_busy']:12.0%} {row['ceiling']:7.0%}"
              f" {row['storage_calls']:19.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,4,16,32")
    parser.add_argument("--storages", default="sqlite,postgresql,journal,grpc")
    parser.add_argument("--trial-seconds", type=float, default=2.0)
    parser.add_argument("--trials-per-worker", type=int, default=6)
    parser.add_argument("--postgres", default=os.environ.get("LEPIDOPT_TEST_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--save", help="the rows as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("url", "ready", "go", "out"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    sys.path.insert(0, str(Path(__file__).parent))
    from environment import print_environment

    print_environment()
    counts = [int(n) for n in args.workers.split(",")]
    kinds = args.storages.split(",")
    print(f"many_workers: {args.trial_seconds:g}-second trials ({EPOCHS} epochs), {args.trials_per_worker} trials "
          f"per worker, on {len(os.sched_getaffinity(0))} cores", flush=True)
    print(f"  {'storage':10} {'workers':>7} {'trials':>6} {'wall s':>7} {'ideal s':>7} {'trials/s':>8} "
          f"{'efficiency':>10} {'in storage':>10} {'overhead/trial':>14}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lepidopt-workers-") as tmp:
        storages = Storages(Path(tmp), args.postgres)
        try:
            for kind in kinds:
                for workers in counts:
                    row = run_arm(kind, workers, args, storages, Path(tmp))
                    rows.append(row)
                    print(f"  {kind:10} {workers:7d} {row['trials']:6d} {row['wall']:7.1f} {row['ideal']:7.1f} "
                          f"{row['per_second']:8.2f} {row['efficiency']:10.1%} {row['storage_share']:10.1%} "
                          f"{row['overhead'] * 1000:11.0f} ms" + (f"; {row['failed']} FAILED" if row["failed"] else ""),
                          flush=True)
        finally:
            storages.close()
    print_cpu(rows)
    if args.save:
        Path(args.save).write_text(json.dumps(rows, indent=1))
    at_32 = [r for r in rows if r["workers"] == max(counts) and r["storage"] in ("postgresql", "grpc")]
    for row in at_32:
        verdict = "met" if row["efficiency"] >= 0.85 else "NOT met"
        print(f"  goal: >= 85% at {row['workers']} workers on {row['storage']}: {row['efficiency']:.1%}, {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
