"""Resident memory over 100 trials of one study, with the feature cache on.

    .venv/bin/python benchmarks/memory.py [--trials 100] [--per-process 10]

The demo space (head trials and conv5 fine-tuning on cached activations) on the demo collection at
scale 0.1, 64 px, TPE and the median pruner, searched jointly (fine-tuning in about half the trials, where the
staged default fine-tunes fewer), three ways, each in a fresh process:

  lepidopt, recycled   trials in worker processes replaced every --per-process trials
                       (--max-trials-per-process), RSS of the process that ran each trial
  lepidopt, one process  every trial in one process, the Keras session cleared between trials
  plain keras loop     the baseline: a head built and trained per trial, the session never cleared

RSS is read after every trial. TensorFlow and Keras keep a few MB per trained model even after
clear_session() (tensorflow#61791, keras#21090), which is why the worker process is recycled.

Goal: peak RSS grows less than 10% from trial 10 to trial 100 (lepidopt, recycled).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def recycled_study(folder: str, trials: int, per_process: int, out) -> None:
    import optuna

    from lepidopt.data import make_demo_collection
    from lepidopt.api import Recycling, WorkerSettings, search
    from lepidopt.study import open_storage

    folder = Path(folder)
    make_demo_collection(folder / "data", scale=0.1, image_size=96)
    search(study="m", data=str(folder / "data"), space="demo", results_dir=folder, n_trials=trials, seed=0,
           strategy="joint", workers=WorkerSettings(recycling=Recycling(max_trials_per_process=per_process)))
    study = optuna.load_study(study_name="m", storage=open_storage(f"sqlite:///{folder}/m/study.db"))
    out.send([t.user_attrs["rss_mb"] * 2**20 if "rss_mb" in t.user_attrs else None for t in study.trials])


def lepidopt_study(folder: str, trials: int, out) -> None:
    import psutil

    from lepidopt.data import make_demo_collection
    from lepidopt.resolve import resolve_run
    from lepidopt.engines import TrialPolicy, get_engine
    from lepidopt.study import create_study
    from lepidopt.trial import study_data

    folder = Path(folder)
    make_demo_collection(folder / "data", scale=0.1, image_size=96)
    run = resolve_run(study="m", results_dir=folder, data=str(folder / "data"), space="demo", seed=0,
                      strategy="joint")
    engine = get_engine(run.engine)
    study = create_study(run, initialize=engine.initialize)
    data = study_data(run)
    process = psutil.Process()
    rss: list[int] = []
    engine.run_trials(run, study, data, n_trials=trials, timeout=None, policy=TrialPolicy(),
                      on_trial=lambda s, t: rss.append(process.memory_info().rss))
    out.send(rss)


def plain_keras_loop(trials: int, out) -> None:
    """A head per trial on fixed features, the session never cleared."""
    import numpy as np
    import psutil

    import keras

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(360, 2048)).astype("float32"), rng.integers(0, 6, 360)
    process = psutil.Process()
    rss = []
    for _ in range(trials):
        inputs = keras.Input((2048,))
        hidden = keras.layers.Dense(128, activation="relu")(keras.layers.BatchNormalization()(inputs))
        model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(hidden))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=32, epochs=5, verbose=0)
        model.predict(x[:80], verbose=0)
        rss.append(process.memory_info().rss)
    out.send(rss)


def in_fresh_process(target, *args) -> list[int]:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(target=target, args=(*args, send))
    worker.start()
    rss = receive.recv()
    worker.join()
    return rss


def growth(rss: list[int | None], first: int) -> tuple[float, float, float]:
    """(peak up to trial ``first`` in MB, peak over all in MB, growth in %); trials without a reading
    (pruned trials record none) are skipped."""
    early, late = max(r for r in rss[:first] if r), max(r for r in rss if r)
    return early / 2**20, late / 2**20, (late - early) / early * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--per-process", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lepidopt-memory-") as tmp:
        recycled = in_fresh_process(recycled_study, tmp, args.trials, args.per_process)
    with tempfile.TemporaryDirectory(prefix="lepidopt-memory-") as tmp:
        one = in_fresh_process(lepidopt_study, tmp, args.trials)
    plain = in_fresh_process(plain_keras_loop, args.trials)
    print(f"memory: {args.trials} trials, demo space on the demo collection (scale 0.1, 64 px), {os.cpu_count()} cores")
    from environment import print_environment

    print_environment()
    rows = ((f"lepidopt, recycled every {args.per_process}", recycled), ("lepidopt, one process", one),
            ("plain keras loop", plain))
    for name, rss in rows:
        early, late, pct = growth(rss, 10)
        print(f"  {name:28s} peak RSS by trial 10 {early:6.0f} MB, by trial {len(rss)} {late:6.0f} MB: {pct:+6.1f}%")
    ours, plain_pct = growth(recycled, 10)[2], growth(plain, 10)[2]
    print(f"  growth: lepidopt recycled {ours:+.1f}%, one process {growth(one, 10)[2]:+.1f}%, plain loop "
          f"{plain_pct:+.1f}%; goal (< 10%, recycled): {'met' if ours < 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
