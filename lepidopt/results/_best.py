"""Finding a study's best trial, with the error a user needs when there is none."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ReportError, command
from ..runs import Run

if TYPE_CHECKING:
    import optuna

__all__ = ["BestTrial", "load_best"]


@dataclasses.dataclass(frozen=True)
class BestTrial:
    run: Run
    study: optuna.Study
    trial: optuna.trial.FrozenTrial

    @property
    def folder(self) -> Path:
        return self.run.folder


def load_best(*, study: str, storage: str | None = None, results_dir: str | Path | None = None,
              trial: int | None = None) -> BestTrial:
    """The best completed trial of an existing study (or its completed trial numbered ``trial``), with the run
    the study records."""
    import optuna

    from ..study import open_study

    opened = open_study(study=study, storage=storage, results_dir=results_dir)
    run, loaded = opened.run, opened.study
    complete = loaded.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        states = [t.state.name.lower() for t in loaded.trials]
        raise ReportError(
            f"study {study!r}", f"has no completed trial yet ({len(states)} trials: "
            f"{', '.join(f'{states.count(s)} {s}' for s in sorted(set(states))) or 'none'}); "
            "run lepidopt search until one completes."
        )
    if trial is None:
        return BestTrial(run=run, study=loaded, trial=loaded.best_trial)
    chosen = [t for t in complete if t.number == trial]
    if not chosen:
        numbers = [t.number for t in complete]
        state = next((t.state.name.lower() for t in loaded.get_trials(deepcopy=False) if t.number == trial), None)
        found = "does not exist" if state is None else f"was {state}"
        raise ReportError(f"trial {trial} of study {study!r}", f"{found}; only a completed trial has a model "
                          "to export, and the completed ones are "
                          f"{', '.join(map(str, numbers[:20]))}{' ...' if len(numbers) > 20 else ''}.",
                          fix=f"Choose one of them (see {command('status', 'study')}).")
    return BestTrial(run=run, study=loaded, trial=chosen[0])
