"""The best validation score found against wall time (an anytime curve), over seeds and budgets, four ways:

  lepidopt         lepidopt's defaults: TPE (multivariate, grouped, 5 startup trials), the space's baseline
                   first, the median pruner judging like with like after a warm-up of half the head's epochs
                   and one finished trial per searched param, and (the demo space searching whether to
                   fine-tune) the staged strategy: heads first, then heads of the top quarter fine-tuned
                   while fine-tuning has taken no more than its share of the machine time: at most half,
                   shrinking while stage-two trials end no better than their heads, and at least a tenth
  lepidopt-joint   the same with --strategy joint: every trial samples a whole recipe
  optuna-plain     Optuna's defaults as its examples write them: TPESampler(seed) and MedianPruner(), asked
                   after every epoch, no baseline
  random           RandomSampler(seed), no pruning

and, asked for with --arms, lepidopt's defaults with another pruner: lepidopt-sh (successive halving, like
with like) and lepidopt-unpruned (no pruning); or with the staged search promoting every head of the top
quarter as it comes, whatever machine time stage two has taken: lepidopt-quarter; or giving stage two half
the machine time however its trials fare: lepidopt-even.

    .venv/bin/python benchmarks/search_quality.py [--seeds 5] [--settings family,genus] [--lanes 2]
        [--arms lepidopt,lepidopt-joint,optuna-plain,random] [--first-seed 0] [--save F] [--load F ...]

--save writes every arm's finished trials as JSON; --load adds such a file's arms to the table and runs only
the (setting, seed, arm) jobs it lacks, so seeds run on several occasions make one table (each seed's arms
still run on one occasion, side by side). Files saved before staged became the default (2026-12-07) name
the joint default "lepidopt" and the staged arm "lepidopt-staged" (which promoted as lepidopt-quarter does);
they are read as lepidopt-joint and lepidopt-quarter, and their pruner arms, which ran joint, are left out.
Files saved before stage two's share shrank with its gains (2026-12-07's evening) name its even share
"lepidopt"; it is read as lepidopt-even.

Every arm trains the same trials (lepidopt's run_trial, the same split per seed, the feature cache starting
empty in every arm, images decoded before every clock), so the arms differ only in which recipes they try
and when they stop them; only lepidopt's arms write checkpoints (a head's every 30 s, fine-tuning's every
epoch), as a lepidopt study does. An arm runs in a process of its own pinned to one core (``--lanes`` processes at
once, one per core), and stops starting trials at its budget: 300 s, and 600 s for random search. A finished
trial's value counts from the moment it finished; pruned trials do not count.

Data: the drawn demo collection as ``lepidopt demo`` draws it (scale 0.1, 96 px, six families) at family
level, and the same collection drawn with three genera per family at genus level (18 classes, imbalanced
within families; the smallest genus needs 12 images, which raises the four smallest families to 66 and
flattens ETHEC's imbalance between them). Space: the built-in demo space. The score is the validation
score the search selects by, on 78 (family) and 93 (genus) validation images: one image moves a
small class's recall, so a search that finishes more trials also gains a little from chance alone.

Goal (mean over seeds, each data setting): lepidopt's default at 150 s reaches at least what optuna-plain
reaches at 300 s and random search at 600 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ARMS = ("lepidopt", "lepidopt-joint", "optuna-plain", "random")
PRUNER_ARMS = {"lepidopt-sh": "sh", "lepidopt-unpruned": "none"}  # lepidopt's defaults but the pruner
BUDGETS = (60, 150, 300, 600)
ARM_BUDGET = {"lepidopt": 300, "lepidopt-joint": 300, "optuna-plain": 300, "random": 600, "lepidopt-sh": 300,
              "lepidopt-unpruned": 300, "lepidopt-quarter": 300, "lepidopt-even": 300}
# In files saved before 2026-12-07, when the default was joint and the staged search promoted every head of the
# top quarter as it came.
RENAMED = {"lepidopt": "lepidopt-joint", "lepidopt-staged": "lepidopt-quarter"}
SETTINGS = ("family", "genus")


def draw(setting: str, folder: Path) -> str:
    """The data setting's collection, drawn into ``folder`` once; the data argument its study takes."""
    from lepidopt.data import make_demo_collection

    if setting == "family":
        if not folder.exists():
            make_demo_collection(folder, scale=0.1, image_size=96)
        return str(folder)
    if not folder.exists():
        make_demo_collection(folder, scale=0.1, image_size=96, genera=3, manifest=True)
    return str(folder / "ethec_manifest.json")


def run_arm(arm: str, setting: str, seed: int, data_dir: Path, folder: Path, budget: float) -> dict:
    """One arm's search for one seed, in this process; its finished trials as (seconds, value, stage)."""
    import optuna

    from lepidopt.data import DataSpec
    from lepidopt.engines import TrialPolicy, get_engine, suggest_optuna
    from lepidopt.engines._trial_setup import trial_recipe
    from lepidopt.resolve import resolve_run
    from lepidopt.study import attrs, create_study
    from lepidopt.trial import Reporter, StudyData, TrialStopped, run_trial, study_data

    if arm in ("lepidopt-quarter", "lepidopt-even"):
        from lepidopt.engines import _staged

        _staged.STAGE_TWO_SHARE = _staged.STAGE_TWO_LEAST = 1.0 if arm == "lepidopt-quarter" else 0.5
    source = draw(setting, data_dir)
    spec = DataSpec(source, label_level="genus") if setting == "genus" else DataSpec(source)
    run = resolve_run(study=f"{arm}-{seed}", results_dir=folder, data=spec, space="demo", seed=seed,
                      strategy="joint" if arm == "lepidopt-joint" else None, pruner=PRUNER_ARMS.get(arm))
    engine = get_engine(run.engine)
    lepidopt_study = create_study(run, initialize=engine.initialize)
    data = StudyData(split=study_data(run).split, cache_dir=folder / f"cache-{arm}-{seed}")
    data.images(run.space.recipe({}).image_size)  # decoded outside the clock, in every arm

    if arm.startswith("lepidopt"):
        study = lepidopt_study
        started = time.time()
        engine.run_trials(run, study, data, n_trials=None, timeout=budget, policy=TrialPolicy())
    else:
        sampler = optuna.samplers.TPESampler(seed=seed) if arm == "optuna-plain" else \
            optuna.samplers.RandomSampler(seed=seed)
        pruner = optuna.pruners.MedianPruner() if arm == "optuna-plain" else optuna.pruners.NopPruner()
        study = optuna.create_study(study_name="plain", storage=f"sqlite:///{folder}/{arm}-{seed}-plain.db",
                                    sampler=sampler, pruner=pruner, direction="maximize")

        class EveryEpoch(Reporter):
            def __init__(self, trial: optuna.Trial) -> None:
                self.trial = trial

            def report(self, value: float, step: int) -> None:
                self.trial.report(value, step)

            def should_stop(self) -> bool:
                return self.trial.should_prune()

        def objective(trial: optuna.Trial) -> float:
            recipe = trial_recipe(run, suggest_optuna(trial, run.space))
            try:
                result = run_trial(recipe, data, EveryEpoch(trial), seed=run.seed + trial.number,
                                   objective=run.objective)
            except TrialStopped as stop:
                trial.set_user_attr("history", stop.history)  # for fine_tuned(), as lepidopt records it
                raise optuna.TrialPruned() from None
            trial.set_user_attr("history", result.history)
            return result.value

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        started = time.time()
        study.optimize(objective, timeout=budget, catch=(Exception,))
    trials = study.get_trials(deepcopy=False)
    finished = [(t.datetime_complete.timestamp() - started, t.value, t.user_attrs.get(attrs.STAGE))
                for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    states = [t.state.name for t in trials]
    if run.strategy == "staged":
        from lepidopt.engines import _staged

        shares = {"stage_two_share": _staged.STAGE_TWO_SHARE, "stage_two_least": _staged.STAGE_TWO_LEAST}
    else:
        shares = {}
    return {"arm": arm, **shares, "strategy": run.strategy if arm.startswith("lepidopt") else None, "setting": setting,
            "seed": seed, "budget": budget, "finished": sorted(finished),
            "trials": len(states), "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
            "classes": len(data.split.classes), "n_val": len(data.split.indices("val")),
            "fine_tuned": fine_tuned(trials)}


def fine_tuned(trials: list) -> list[dict]:
    """Each trial that fine-tuned (finished or pruned): its depth, learning rate, state, the head's best and
    where fine-tuning left it; what the space's fine-tuning ranges are judged by."""
    out = []
    for t in trials:
        history = t.user_attrs.get("history") or []
        heads = [h["balanced_accuracy"] for h in history if h["phase"] == "head"]
        tuned = [h["balanced_accuracy"] for h in history if h["phase"] == "finetune"]
        if tuned and heads:
            out.append({"unfreeze": t.params.get("finetune.unfreeze"), "lr": t.params.get("finetune.lr"),
                        "state": t.state.name, "head_best": max(heads), "finetuned_last": tuned[-1],
                        "seconds": (t.user_attrs.get("timings") or {}).get("finetune")})
    return out


def today(saved: list[dict]) -> list[dict]:
    """Saved arms under today's names: files from before staged became the default carry no strategy, and files
    from before stage two's share shrank with its gains carry no share (their staged default is lepidopt-even)."""
    out = []
    for record in saved:
        if "strategy" not in record and record["arm"].startswith("lepidopt"):
            if record["arm"] not in RENAMED:
                continue  # a pruner arm that ran joint, which today's pruner arms do not
            record = {**record, "arm": RENAMED[record["arm"]],
                      "strategy": "staged" if record["arm"] == "lepidopt-staged" else "joint"}
        elif record["arm"] == "lepidopt" and record.get("strategy") == "staged" and "stage_two_least" not in record:
            record = {**record, "arm": "lepidopt-even"}
        out.append(record)
    return out


def best_by(finished: list, seconds: float) -> float | None:
    values = [value for at, value, _ in finished if at <= seconds]
    return max(values) if values else None


def child(args: argparse.Namespace) -> int:
    os.sched_setaffinity(0, {args.core})
    result = run_arm(args.arm, args.setting, args.seed, Path(args.data_dir), Path(args.folder), args.budget)
    Path(args.out).write_text(json.dumps(result))
    return 0


def jobs_of(settings: list[str], seeds: range, arms: list[str], done: list[dict]) -> list[tuple[str, int, str]]:
    """The jobs not ``done`` already, longest first, so that the lanes finish together."""
    have = {(r["setting"], r["seed"], r["arm"]) for r in done}
    jobs = [(setting, seed, arm) for setting in settings for seed in seeds for arm in arms
            if (setting, seed, arm) not in have]
    return sorted(jobs, key=lambda job: -ARM_BUDGET[job[2]])


def run_all(jobs: list[tuple[str, int, str]], settings: list[str], lanes: int, folder: Path,
            scale: float, save: Path, loaded: list[dict]) -> list[dict]:
    """``loaded`` and every arm run here; ``save`` rewritten as each arm finishes, so a stopped run keeps them."""
    pending = list(jobs)
    running: dict[int, tuple[subprocess.Popen, Path]] = {}
    results = list(loaded)
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1")
    for setting in settings:  # drawn once, before any clock
        draw(setting, folder / f"data-{setting}")
    while pending or running:
        for core in range(lanes):
            if core not in running and pending:
                setting, seed, arm = pending.pop(0)
                out = folder / f"{setting}-{arm}-{seed}.json"
                work = folder / f"{setting}-{arm}-{seed}"
                command = [sys.executable, __file__, "--child", "--arm", arm, "--setting", setting, "--seed", str(seed),
                           "--core", str(core), "--data-dir", str(folder / f"data-{setting}"), "--folder", str(work),
                           "--out", str(out), "--budget", str(ARM_BUDGET[arm] * scale)]
                running[core] = (subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL), out)
        for core, (process, out) in list(running.items()):
            if process.poll() is not None:
                del running[core]
                if process.returncode != 0:
                    print(f"  an arm failed (exit {process.returncode}), left out: {' '.join(process.args[3:11])}",
                          flush=True)
                    continue
                result = json.loads(out.read_text())
                results.append(result)
                save.write_text(json.dumps(results))
                best = {b: best_by(result["finished"], b * scale) for b in BUDGETS if b * scale <= result["budget"]}
                print(f"  {result['setting']:6} seed {result['seed']} {result['arm']:16} {result['trials']:4} trials "
                      f"({result['pruned']} pruned, {result['failed']} failed); best at "
                      + ", ".join(f"{b} s {_fmt(v)}" for b, v in best.items()), flush=True)
        time.sleep(1)
    return results


def _fmt(value: float | None) -> str:
    return "  -   " if value is None else f"{value:.4f}"


def table(results: list[dict], settings: list[str], scale: float) -> tuple[list[str], dict]:
    arms = [arm for arm in ARM_BUDGET if any(r["arm"] == arm for r in results)]
    lines, means = [], {}
    for setting in settings:
        classes = next(r["classes"] for r in results if r["setting"] == setting)
        lines.append(f"{setting} ({classes} classes): best validation balanced accuracy, mean ± sd over seeds "
                     "[min-max]")
        lines.append(f"  {'arm':16}" + "".join(f"{b:>26} s" for b in BUDGETS))
        for arm in arms:
            row = f"  {arm:16}"
            for b in BUDGETS:
                values = [best_by(r["finished"], b * scale) for r in results
                          if r["setting"] == setting and r["arm"] == arm and b * scale <= r["budget"]]
                if not values:
                    row += f"{'':>28}"
                    continue
                if None in values:  # a seed that finished no trial by then has found no recipe
                    row += f"{f'{values.count(None)} of {len(values)} seeds: none yet':>28}"
                    continue
                mean = statistics.mean(values)
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                means[(setting, arm, b)] = mean
                row += f"{mean:>10.4f} ± {sd:.4f} [{min(values):.2f}-{max(values):.2f}]"
            lines.append(row)
        ours = means.get((setting, "lepidopt", 150))
        plain, rand = means.get((setting, "optuna-plain", 300)), means.get((setting, "random", 600))
        if ours is not None and plain is not None and rand is not None:
            verdict = "met" if ours >= plain and ours >= rand else "NOT met"
            lines.append(f"  goal: lepidopt at 150 s {ours:.4f} >= optuna-plain at 300 s {plain:.4f} and random at "
                         f"600 s {rand:.4f}: {verdict}")
        for other in ("lepidopt-joint", "lepidopt-quarter", "lepidopt-even"):
            theirs = means.get((setting, other, 150))
            if ours is not None and theirs is not None:
                lines.append(f"  {other} at 150 s: {theirs:.4f} ({'behind' if theirs < ours else 'not behind'} the "
                             "default)")
    return lines, means


def figure(results: list[dict], settings: list[str], path: Path, scale: float) -> None:
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    colours = {"lepidopt": "#1f77b4", "lepidopt-joint": "#17becf", "optuna-plain": "#ff7f0e", "random": "#7f7f7f",
               "lepidopt-sh": "#2ca02c", "lepidopt-unpruned": "#9467bd", "lepidopt-quarter": "#8c564b",
               "lepidopt-even": "#d62728"}
    fig = make_subplots(rows=1, cols=len(settings), subplot_titles=[f"{s} level" for s in settings],
                        shared_yaxes=True)
    for col, setting in enumerate(settings, start=1):
        for arm in ARM_BUDGET:
            runs = [r for r in results if r["setting"] == setting and r["arm"] == arm]
            if not runs:
                continue
            grid = np.linspace(0, runs[0]["budget"], 301)
            curves = np.array([[np.nan if (v := best_by(r["finished"], t)) is None else v for t in grid]
                               for r in runs], dtype=float)
            seconds = grid / scale
            for curve in curves:
                fig.add_trace(go.Scatter(x=seconds, y=curve, mode="lines", line=dict(color=colours[arm], width=0.6),
                                         opacity=0.35, showlegend=False, hoverinfo="skip"), row=1, col=col)
            mean = np.nanmean(np.where(np.isnan(curves), 0.0, curves), axis=0)
            fig.add_trace(go.Scatter(x=seconds, y=mean, mode="lines", name=arm, legendgroup=arm,
                                     showlegend=col == 1, line=dict(color=colours[arm], width=2.5)), row=1, col=col)
        fig.update_xaxes(title_text="wall seconds (one core)", row=1, col=col)
    fig.update_yaxes(title_text="best validation balanced accuracy", row=1, col=1)
    fig.update_layout(title=f"search quality: best so far, mean of {len({r['seed'] for r in results})} seeds "
                      "(thin: each seed)", template="plotly_white", width=1200, height=520)
    fig.write_html(path, include_plotlyjs=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--lanes", type=int, default=min(2, len(os.sched_getaffinity(0))))
    parser.add_argument("--html", default="search_quality.html")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"of {', '.join(ARM_BUDGET)}")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--save", default="search_quality.json", help="every arm's finished trials, as JSON")
    parser.add_argument("--load", nargs="*", default=[], help="earlier --save files to include")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="every budget times this, for a quick check of the script (the table names the "
                        "unscaled budgets)")
    parser.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("arm", "setting", "data-dir", "folder", "out"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    sys.path.insert(0, str(Path(__file__).parent))
    from environment import print_environment

    settings, arms = args.settings.split(","), args.arms.split(",")
    unknown = sorted(set(arms) - set(ARM_BUDGET))
    if unknown:
        parser.error(f"unknown arm {unknown[0]!r}; the arms are {', '.join(ARM_BUDGET)}")
    loaded = [r for path in args.load for r in today(json.loads(Path(path).read_text()))]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = jobs_of(settings, seeds, arms, loaded)
    print_environment()
    print(f"search_quality: seeds {seeds.start} to {seeds.stop - 1}, settings {', '.join(settings)}, arms "
          f"{', '.join(arms)}; {len(jobs)} to run, {args.lanes} at once, each on one core; {len(loaded)} loaded",
          flush=True)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="lepidopt-quality-") as tmp:
        results = run_all(jobs, settings, args.lanes, Path(tmp), args.time_scale, Path(args.save), loaded)
    Path(args.save).write_text(json.dumps(results))
    lines, _ = table(results, settings, args.time_scale)
    print("\n".join(lines))
    figure(results, settings, Path(args.html), args.time_scale)
    print(f"curves: {Path(args.html).resolve()}; {time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
