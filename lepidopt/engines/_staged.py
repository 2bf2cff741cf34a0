"""The staged strategy: fine-tuning paid only by recipes whose head earned it.

Stage one samples everything but the fine-tuning params and trains heads on cached features, keeping the
finished heads of the top ``PROMOTED_SHARE`` as checkpoints in their trials' folders. Each time a head
finishes, the best head not yet promoted among that top share goes on to stage two (as successive halving
promotes, asynchronously: no worker waits for a rung to fill), while stage two has taken no more than its
share of the machine time, which shrinks while fine-tuning leaves its heads no better: a trial enqueued
with the head's params, whose sampler chooses the unfreeze depth and fine-tuning learning rate, and which
starts from the head's checkpoint and seed, or trains the head again from that seed when the checkpoint is
gone (or checkpoints are off). It is Optuna's default for a space that searches whether to fine-tune
(``default_strategy``). Both stages are trials of the one Optuna study, tagged with ``attrs.STAGE``; a
stage-two trial is retried from its own checkpoints like any other, and exported by training its head again
with the same seed, then fine-tuning it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._files import write_text_atomically
from ..errors import SettingError, option
from ..recipe import Recipe
from ..runs import Run
from ..spaces import Choice, Space
from ..study import attrs, count_claimed
from ._pruning import pruning_schedule

if TYPE_CHECKING:
    import optuna

__all__ = ["STRATEGIES", "PROMOTED_SHARE", "STAGE_TWO_SHARE", "STAGE_TWO_LEAST", "default_strategy", "check_staged",
           "stage_one_space", "stage_two_space", "promote", "stage_two_root", "start_from_parent",
           "is_fine_tuning_param", "stage_two_share"]

log = logging.getLogger("lepidopt")
STRATEGIES = ("joint", "staged")
# Heads in the top quarter are fine-tuned, the best first, as long as stage two has taken no more than its share
# of the machine time: at most as much as stage one, as each rung of successive halving gets the same time
# (fine-tuning costs ~10-100x a head, so promoting the whole top quarter at once would give stage two most of
# the machine), and less while fine-tuning does not pay: the share shrinks with the stage-two trials that ended
# no better than their heads, (gains + 1) / (ended + 1) of the most, and never below the least.
PROMOTED_SHARE = 0.25
STAGE_TWO_SHARE = 0.5  # the most, of the machine time spent on trials
STAGE_TWO_LEAST = 0.1
# Unpromoted heads of the top share that keep their checkpoints, the best first; the others are trained again
# (from the same seed, to the same weights) if they are promoted, which costs a head trial.
NEXT_IN_LINE = 4


def is_fine_tuning_param(name: str) -> bool:
    return name.startswith("finetune.")


def _depths(space: Space) -> tuple[Any, ...]:
    """The unfreeze depths other than none that ``space`` can fine-tune at."""
    if any(p.name == "finetune.unfreeze" for p in space.params):
        choice = space.param("finetune.unfreeze")
        assert isinstance(choice, Choice)
        return tuple(v for v in choice.values if v != "none")
    fixed = space.fixed.get("finetune.unfreeze", Recipe.finetune_unfreeze)
    return () if fixed == "none" else (fixed,)


def default_strategy(space: Space) -> str:
    """Staged for a space that searches whether to fine-tune (``finetune.unfreeze`` a param with ``none`` and a
    depth among its choices), where its stage one tries recipes of the space; joint for any other."""
    unfreeze = next((p for p in space.params if p.name == "finetune.unfreeze"), None)
    if isinstance(unfreeze, Choice) and "none" in unfreeze.values and _depths(space):
        return "staged"
    return "joint"


def check_staged(run: Run) -> None:
    """Refuse a staged run that cannot work: a space that never fine-tunes."""
    if run.strategy != "staged":
        return
    if not _depths(run.space):
        raise SettingError("strategy", "staged", f"fine-tunes the best heads, and space {run.space.name!r} never "
                           "fine-tunes (finetune.unfreeze is none).",
                           fix=f"Add finetune.unfreeze to its params, or set {option('strategy')} to joint.")


def stage_one_space(space: Space) -> Space:
    """``space`` without its fine-tuning params, never fine-tuning."""
    return dataclasses.replace(space, params=tuple(p for p in space.params if not is_fine_tuning_param(p.name)),
                               fixed={**space.fixed, "finetune.unfreeze": "none"})


def stage_two_space(space: Space) -> Space:
    """``space`` with its unfreeze depth chosen among those that fine-tune (its head params come fixed with the
    enqueued trial)."""
    def stage_two(p: Any) -> Any:
        return dataclasses.replace(p, values=_depths(space)) if p.name == "finetune.unfreeze" else p

    return dataclasses.replace(space, params=tuple(stage_two(p) for p in space.params))


def _head_folder(run: Run, trial: optuna.trial.FrozenTrial) -> Path:
    return run.folder / "trials" / str(attrs.root_of(trial))


def promote(run: Run, study: optuna.Study, *, n_trials: int | None) -> int | None:
    """Enqueue the stage two of the best finished head not yet promoted, if it is in the top ``PROMOTED_SHARE``
    of the finished heads (counted once there are as many as the pruner's startup trials), the study's total
    has room for it and stage two has had no more than its share of the time; and remove the checkpoints of
    heads outside the top share or behind the ``NEXT_IN_LINE`` unpromoted ones, which a later promotion
    trains again (from the same seed, to the same weights). Returns the promoted trial's number."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    heads = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get(attrs.STAGE) == 1
             and t.value is not None]
    if len(heads) < pruning_schedule(run).startup_trials:
        return None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(heads, key=lambda t: float(t.value or 0.0), reverse=maximize)
    top = max(1, int(len(ranked) * PROMOTED_SHARE))
    promoted = {t.user_attrs.get(attrs.PARENT) for t in trials
                if t.user_attrs.get(attrs.STAGE) == 2 and not t.user_attrs.get(attrs.SURPLUS)}
    in_line = [head for head in ranked[:top] if head.number not in promoted]
    for head in ranked[top:] + in_line[NEXT_IN_LINE:]:
        shutil.rmtree(_head_folder(run, head), ignore_errors=True)
    waiting = sum(t.state == optuna.trial.TrialState.WAITING for t in trials)
    if n_trials is not None and count_claimed(study) + waiting >= n_trials:
        return None
    if not _stage_two_has_time(trials, maximize=maximize):
        return None
    for head in in_line:
        params = dict(head.params)
        baseline = run.space.baseline or {}
        if head.user_attrs.get(attrs.BASELINE) and baseline.get("finetune.unfreeze", "none") != "none":
            params.update({k: v for k, v in baseline.items() if is_fine_tuning_param(k)})  # the baseline's own
        study.enqueue_trial(params, user_attrs={attrs.STAGE: 2, attrs.PARENT: head.number})
        log.info("trial %d's head (%s %.4f) goes on to fine-tuning", head.number, run.objective, head.value)
        return head.number
    return None


def stage_two_share(trials: list[optuna.trial.FrozenTrial], *, maximize: bool) -> float:
    """The share of the machine time stage two may take: ``STAGE_TWO_SHARE`` times (gains + 1) / (ended + 1) over
    the stage-two trials that ended (finished or pruned; not surplus), a gain being a finished one whose value is
    better than its head trial's, and at least ``STAGE_TWO_LEAST``. Fine-tuning that pays keeps its half of the
    machine; fine-tuning that leaves its heads where they were, or worse, gives its time back to the heads."""
    import optuna

    complete = optuna.trial.TrialState.COMPLETE
    heads = {t.number: t.value for t in trials if t.state == complete and t.value is not None}
    ended = gains = 0
    for t in trials:
        head = heads.get(int(t.user_attrs.get(attrs.PARENT, -1)))
        if (t.user_attrs.get(attrs.STAGE) != 2 or t.user_attrs.get(attrs.SURPLUS) or head is None
                or t.state not in (complete, optuna.trial.TrialState.PRUNED)):
            continue
        ended += 1
        # A pruned trial's value is its last epoch's (Optuna's): stopped, it gained nothing.
        if t.state == complete and t.value is not None and (t.value > head if maximize else t.value < head):
            gains += 1
    return max(STAGE_TWO_LEAST, STAGE_TWO_SHARE * (gains + 1) / (ended + 1))


def _stage_two_has_time(trials: list[optuna.trial.FrozenTrial], *, maximize: bool) -> bool:
    """Whether stage two's machine time so far is within its share (``stage_two_share``) of the time spent on both
    stages.

    A finished trial took its start to its end (one worker's clock). A running one counts up to now, on this
    worker's clock, so at most as long as the longest finished trial of its stage: a dead worker's trial,
    left running on a storage without heartbeat, or another machine's clock, cannot stop promotion for good.
    A waiting promotion counts as the mean finished stage two, or as the longest running one before any."""
    now = datetime.datetime.now()
    finished: dict[int, list[float]] = {1: [], 2: []}
    running: dict[int, list[float]] = {1: [], 2: []}
    waiting = 0
    for t in trials:
        stage = 2 if t.user_attrs.get(attrs.STAGE) == 2 else 1
        if t.datetime_start is None:
            waiting += stage == 2
        elif t.datetime_complete is None:
            running[stage].append(max((now - t.datetime_start.replace(tzinfo=None)).total_seconds(), 0.0))
        else:
            finished[stage].append(max((t.datetime_complete - t.datetime_start).total_seconds(), 0.0))
    spent = {}
    for stage in (1, 2):
        cap = max(finished[stage], default=float("inf"))
        spent[stage] = sum(finished[stage]) + sum(min(s, cap) for s in running[stage])
    if waiting:
        took = finished[2] or [max(running[2], default=0.0)]
        spent[2] += waiting * sum(took) / len(took)
    return spent[2] <= stage_two_share(trials, maximize=maximize) * (spent[1] + spent[2])


def stage_two_root(study: optuna.Study, trial: optuna.Trial) -> int | None:
    """The root of the stage-two ``trial`` (the first trial of its retry chain), or None when another worker
    promoted its head first: a stage-two trial of the same parent with a lower root, not itself surplus."""
    trials = study.get_trials(deepcopy=False)
    root = attrs.root_of(next(t for t in trials if t.number == trial.number))
    parent = trial.user_attrs[attrs.PARENT]
    if any(t.user_attrs.get(attrs.PARENT) == parent and attrs.root_of(t) < root and not t.user_attrs.get(attrs.SURPLUS)
           for t in trials):
        return None
    return root


def start_from_parent(run: Run, study: optuna.Study, trial: optuna.Trial, folder: Path) -> tuple[int, bool]:
    """Copy the head checkpoint of the stage-two ``trial``'s parent into ``folder`` (unless ``folder`` holds a
    checkpoint already: a retried stage two goes on from its own) and remove the parent's; return the parent's
    seed and whether the head was copied. When the parent's checkpoint is not there (removed when the head left
    the top share, or on another machine's disk), nothing is copied and the trial trains the head again from the
    parent's seed, to the same weights."""
    number = trial.user_attrs[attrs.PARENT]
    parent = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    seed = int(parent.user_attrs[attrs.SEED])
    if (folder / "state.json").exists():
        return seed, False
    source = _head_folder(run, parent)
    try:
        state = (source / "state.json").read_text()
        folder.mkdir(parents=True, exist_ok=True)
        for path in source.glob("step-*.npz"):
            shutil.copyfile(path, folder / path.name)
    except OSError:  # gone, or removed while copied
        shutil.rmtree(folder, ignore_errors=True)
        log.info("trial %d trains the head of trial %d again: its checkpoint is not in %s", trial.number, number,
                 source)
        return seed, False
    write_text_atomically(folder / "state.json", state)  # last: it names whole files
    shutil.rmtree(source, ignore_errors=True)
    return seed, True
