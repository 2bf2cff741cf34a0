"""Time per trial spent outside training (storage, sampling, pruning, bookkeeping) on a SQLite study that
already holds 500 finished trials.

    .venv/bin/python benchmarks/trial_overhead.py [--history 500] [--trials 30]

The study is the demo space without fine-tuning (25 head epochs, so 25 intermediate values and 25
pruning questions per trial), TPE and the median pruner, on the tiny demo collection with its
features cached. It is filled to ``--history`` finished trials whose storage rows look like real ones
(params, 25 intermediate values, the recipe, history and metrics attributes), then ``--trials`` more
run through lepidopt's own loop. Overhead per trial = wall time minus the time inside ``run_trial``
spent on anything but reporting to the study.

The first read of the study (Optuna loads every trial into its cache, once per process) is outside
the clock for both and printed on its own.

Baseline, measured in the same run on a copy of the same study: Optuna alone, the same sampler,
pruner and reporting (25 report + should_prune per trial) with an objective that trains nothing.

Goal: lepidopt's overhead under 50 ms per trial at 500 finished trials.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).parent))
from search_throughput import space_without_finetuning  # noqa: E402


def fill(study, template, n: int) -> None:
    """Add finished trials like ``template`` until the study holds ``n``, with varied values."""
    import numpy as np
    import optuna

    rng = np.random.default_rng(0)
    trials = []
    for i in range(n - len(study.trials)):
        value = float(rng.uniform(0.2, 0.95))
        steps = {s: value * (s + 1) / len(template.intermediate_values) for s in template.intermediate_values}
        trials.append(optuna.trial.create_trial(params=template.params, distributions=template.distributions,
                                                value=value, intermediate_values=steps,
                                                user_attrs=template.user_attrs))
    study.add_trials(trials)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=500)
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()

    import optuna

    from lepidopt.data import make_demo_collection
    from lepidopt.runs import resolve_run, write_run
    from lepidopt.search import StudyData, prepare_split
    from lepidopt.search._optuna_engine import create_or_load_study, make_pruner, make_sampler, optimize
    from lepidopt.search._optuna_space import suggest

    space = space_without_finetuning()
    with tempfile.TemporaryDirectory(prefix="lepidopt-overhead-") as tmp:
        tmp = Path(tmp)
        make_demo_collection(tmp / "data", scale=0.1, image_size=96)
        run = resolve_run(study="o", results_dir=tmp, data=str(tmp / "data"), space=space, seed=0)
        split = prepare_split(run)
        write_run(run)
        data = StudyData(split=split, cache_dir=run.folder / "cache")
        study = create_or_load_study(run)
        optimize(run, study, data, n_trials=2, timeout=None)  # real trials: the template, and a warm cache
        template = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE][-1]
        fill(study, template, args.history)
        shutil.copy(run.folder / "study.db", tmp / "baseline.db")
        epochs = len(template.intermediate_values)

        # Once per process, not per trial: the first read of the study loads every trial into Optuna's cache.
        started = time.perf_counter()
        study.get_trials(deepcopy=False)
        first_read = time.perf_counter() - started
        inside: list[float] = []
        started = time.perf_counter()
        optimize(run, study, data, n_trials=args.history + args.trials, timeout=None,
                 on_trial=lambda s, t: inside.append(t.user_attrs["timings"]["trial"]
                                                     - t.user_attrs["timings"]["report"]
                                                     if "timings" in t.user_attrs else 0.0))
        wall = time.perf_counter() - started
        ran = len(inside)
        ours = (wall - sum(inside)) / ran

        baseline = optuna.load_study(study_name="o", storage=f"sqlite:///{tmp / 'baseline.db'}",
                                     sampler=make_sampler("tpe", seed=0),
                                     pruner=make_pruner("median", max_steps=epochs, warmup_steps=epochs // 2))

        baseline.get_trials(deepcopy=False)  # outside the clock, as for lepidopt

        def bare(trial):
            suggest(trial, space)
            for step in range(epochs):
                trial.report(0.5, step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            return 0.5

        started = time.perf_counter()
        baseline.optimize(bare, n_trials=ran)
        floor = (time.perf_counter() - started) / ran
        started = time.perf_counter()
        baseline.optimize(lambda trial: (suggest(trial, space), 0.5)[1], n_trials=ran)
        sampling = (time.perf_counter() - started) / ran

    print(f"trial_overhead: SQLite study at {args.history} finished trials, {ran} more trials, {epochs} reports each, "
          f"TPE + median pruner, {os.cpu_count()} cores")
    print(f"  lepidopt   {ours * 1000:6.1f} ms per trial outside training")
    print(f"  optuna     {floor * 1000:6.1f} ms per trial (same sampler, pruner and reports, nothing trained)")
    print(f"  optuna     {sampling * 1000:6.1f} ms per trial of it for sampling and the trial's record alone (no reports)")
    print(f"  once per process, outside the figures above: the first read of the study, {first_read * 1000:.0f} ms")
    print(f"  ratio: lepidopt / optuna alone = {ours / floor:.2f}; goal (< 50 ms): {'met' if ours < 0.05 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
