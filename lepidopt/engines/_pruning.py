"""Optuna's pruners as lepidopt uses them: each judges an epoch only against the same kind of epoch of other
trials (a head epoch, or a fine-tuning epoch at the same unfreeze depth), after a warm-up in epochs and a
number of finished trials that grows with the space."""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from typing import TYPE_CHECKING, Any, Callable, Container, Hashable, cast

from ..errors import SettingError
from ..runs import Run
from ..study import attrs

if TYPE_CHECKING:
    import optuna

__all__ = ["PRUNERS", "PruningSchedule", "pruning_schedule", "make_pruner", "epoch_kind", "MIN_STARTUP_TRIALS"]

PRUNERS = ("median", "hyperband", "sh", "none")  # the default first
MIN_STARTUP_TRIALS = 5  # Optuna's own default for its median and percentile pruners
# Seconds a pruner's view of the other trials is kept within a trial. Each read of a study's trials reads every
# running trial again, and a worker's pruner reads at every epoch: with many workers that is most of the
# storage's load. The peers that finish meanwhile move a median little; a trial's first judgement reads afresh.
PEERS_READ_EVERY = 10.0


@dataclasses.dataclass(frozen=True)
class PruningSchedule:
    max_steps: int  # the most epochs a trial reports
    warmup_steps: int  # epochs before any pruner may stop a trial
    startup_trials: int  # finished trials with the same kind of head epoch before the median pruner judges one


def pruning_schedule(run: Run) -> PruningSchedule:
    """The run's schedule: heads on fresh features start near chance and separate later, so nothing is judged
    in the first half of the head's epochs; and a median of a few trials is noise, so the median pruner judges
    a head epoch once there are as many finished trials as the space searches params (at least
    ``MIN_STARTUP_TRIALS``). A fine-tuning epoch is judged once ``MIN_STARTUP_TRIALS`` trials fine-tuned at its
    depth: fine-tuning is the dear fidelity, searched over fewer params, and waiting for a trial per param at
    each depth would leave it unjudged for most of a study."""
    longest = run.space.recipe({})
    return PruningSchedule(max_steps=longest.epochs_head + longest.epochs_finetune,
                           warmup_steps=longest.epochs_head // 2,
                           startup_trials=max(MIN_STARTUP_TRIALS, len(run.space.params)))


def make_pruner(name: str | None, *, max_steps: int, warmup_steps: int,
                startup_trials: int = MIN_STARTUP_TRIALS) -> Any:
    """The pruner called ``name``. The median and successive-halving pruners compare like with like
    (``epoch_kind``); Hyperband judges within its own brackets, every kind of epoch alike."""
    import optuna

    if name == "median":
        heads = optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)
        fine_tuning = optuna.pruners.MedianPruner(n_startup_trials=MIN_STARTUP_TRIALS, n_warmup_steps=warmup_steps)
        return _like_with_like()(heads, fine_tuning)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(warmup_steps, 1), max_resource=max(max_steps, 1))
    if name == "sh":
        return _like_with_like()(optuna.pruners.SuccessiveHalvingPruner(min_resource=max(warmup_steps, 1)))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SettingError("pruner", name, f"must be one of {', '.join(PRUNERS)}.")


def epoch_kind(trial: optuna.trial.FrozenTrial, step: int) -> Hashable:
    """What the trial's ``step`` was: a head epoch, or a fine-tuning epoch at its unfreeze depth after a head
    of its length (the recipe the trial records; trials without one are alike). A stage-two trial's head epochs
    repeat its parent's and are a kind of their own, so no head counts twice."""
    recipe = trial.user_attrs.get(attrs.RECIPE)
    if recipe is None:
        return None
    if step < recipe["epochs_head"]:
        return "head, again" if attrs.PARENT in trial.user_attrs else "head"
    return "finetune", recipe["finetune.unfreeze"], recipe["epochs_head"]


@functools.cache
def _like_with_like() -> type:
    """The pruner class, made on first use: Optuna is imported only by the processes that search."""
    import optuna

    class _LikeWithLike(optuna.pruners.BasePruner):
        """Asks ``pruner`` about a trial's last step with the study narrowed to the trials whose same step was
        the same kind of epoch, and the trial's own values to its epochs of that kind: a fine-tuning epoch is
        never judged against a head epoch, nor conv5 against conv4."""

        def __init__(self, pruner: optuna.pruners.BasePruner,
                     fine_tuning: optuna.pruners.BasePruner | None = None) -> None:
            self.pruner = pruner
            self.fine_tuning = fine_tuning or pruner  # for fine-tuning epochs
            self._read: tuple[int, float, list[optuna.trial.FrozenTrial]] | None = None

        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            step = trial.last_step
            if step is None:
                return False
            kind = epoch_kind(trial, step)
            pruner = self.fine_tuning if isinstance(kind, tuple) else self.pruner
            own = copy.copy(trial)  # its own best so far, too, counts only epochs of this kind
            own.intermediate_values = {
                s: value for s, value in trial.intermediate_values.items() if epoch_kind(trial, s) == kind}
            peers = _Peers(study, self._trials(study, trial.number), lambda other: epoch_kind(other, step) == kind)
            return bool(pruner.prune(cast("optuna.Study", peers), own))

        def _trials(self, study: optuna.Study, number: int) -> list[optuna.trial.FrozenTrial]:
            """The study's trials, read at a trial's first judgement and again once ``PEERS_READ_EVERY`` seconds
            have passed."""
            now = time.monotonic()
            if self._read is None or self._read[0] != number or now - self._read[1] > PEERS_READ_EVERY:
                self._read = (number, now, study.get_trials(deepcopy=False))
            return self._read[2]

    return _LikeWithLike


class _Peers:
    """The study as a pruner reads it, holding only the ``trials`` that ``keep`` accepts (Optuna's Hyperband
    narrows a study to a bracket the same way)."""

    def __init__(self, study: optuna.Study, trials: list[optuna.trial.FrozenTrial],
                 keep: Callable[[optuna.trial.FrozenTrial], bool]) -> None:
        self._study = study
        self._trials = trials
        self._keep = keep

    def get_trials(self, deepcopy: bool = True, states: Container[Any] | None = None) -> list[Any]:
        kept = [t for t in self._trials if (states is None or t.state in states) and self._keep(t)]
        return copy.deepcopy(kept) if deepcopy else kept

    @property
    def trials(self) -> list[Any]:
        return self.get_trials()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)
