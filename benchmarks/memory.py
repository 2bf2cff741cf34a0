"""Resident memory over 100 trials of one study in one process, with the feature cache on.

    .venv/bin/python benchmarks/memory.py [--trials 100]

The demo space (head trials and conv5 fine-tuning on cached activations) on the demo collection at
scale 0.1, 64 px, TPE and the median pruner, every trial in the same process (no recycling). RSS is
read after every trial. Baseline, measured in the same run and process kind: the same number of
trials as a plain Keras loop that builds and trains a head per trial without clearing the Keras
session, which is what grows when nothing is done about it.

Goal: peak RSS grows less than 10% from trial 10 to trial 100.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def lepidopt_study(folder: str, trials: int, out) -> None:
    import psutil

    from lepidopt.data import make_demo_collection
    from lepidopt.runs import resolve_run, write_run
    from lepidopt.search import StudyData, prepare_split
    from lepidopt.search._optuna_engine import create_or_load_study, optimize

    folder = Path(folder)
    make_demo_collection(folder / "data", scale=0.1, image_size=96)
    run = resolve_run(study="m", results_dir=folder, data=str(folder / "data"), space="demo", seed=0)
    split = prepare_split(run)
    write_run(run)
    data = StudyData(split=split, cache_dir=run.folder / "cache")
    study = create_or_load_study(run)
    process = psutil.Process()
    rss: list[int] = []
    optimize(run, study, data, n_trials=trials, timeout=None,
             on_trial=lambda s, t: rss.append(process.memory_info().rss))
    out.send(rss)


def plain_keras_loop(trials: int, out) -> None:
    """A head per trial on fixed features, the session never cleared."""
    import numpy as np
    import psutil

    from lepidopt._tf import keras as import_keras

    keras = import_keras()
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


def growth(rss: list[int], first: int) -> tuple[float, float, float]:
    """(peak up to trial ``first`` in MB, peak over all in MB, growth in %)."""
    early, late = max(rss[:first]), max(rss)
    return early / 2**20, late / 2**20, (late - early) / early * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lepidopt-memory-") as tmp:
        ours = in_fresh_process(lepidopt_study, tmp, args.trials)
    plain = in_fresh_process(plain_keras_loop, args.trials)
    print(f"memory: {args.trials} trials in one process, demo space on the demo collection (scale 0.1, 64 px), "
          f"{os.cpu_count()} cores")
    for name, rss in (("lepidopt", ours), ("plain keras loop", plain)):
        early, late, pct = growth(rss, 10)
        print(f"  {name:17s} peak RSS by trial 10 {early:7.0f} MB, by trial {len(rss)} {late:7.0f} MB: "
              f"{pct:+5.1f}%   (RSS after trial 10 {rss[9] / 2**20:.0f} MB, after trial {len(rss)} "
              f"{rss[-1] / 2**20:.0f} MB)")
    ours_pct, plain_pct = growth(ours, 10)[2], growth(plain, 10)[2]
    print(f"  growth lepidopt {ours_pct:+.1f}% against the plain loop's {plain_pct:+.1f}%; "
          f"goal (< 10%): {'met' if ours_pct < 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
