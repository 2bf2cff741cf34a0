"""Finding a study's best trial, with the error a user needs when there is none."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import ReportError, StudyError
from ..runs import Run, resolve_run, study_dir

__all__ = ["BestTrial", "load_best"]


@dataclasses.dataclass(frozen=True)
class BestTrial:
    run: Run
    study: object  # optuna.Study
    trial: object  # optuna.trial.FrozenTrial

    @property
    def folder(self) -> Path:
        return self.run.folder


def load_best(*, study: str, storage: str | None = None, results_dir: str | Path = "results") -> BestTrial:
    import optuna

    from ..search import open_study

    if not (study_dir(results_dir, study) / "run.yaml").exists():  # the data and recipe come from it
        raise StudyError(f"study {study!r}: no run.yaml in {str(study_dir(results_dir, study))!r}. "
                         "Check --study and --results-dir.")
    loaded, _ = open_study(study=study, storage=storage, results_dir=results_dir)
    run = resolve_run(study=study, results_dir=results_dir, storage=storage)
    complete = loaded.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        states = [t.state.name.lower() for t in loaded.trials]
        raise ReportError(
            f"study {study!r}: has no completed trial yet ({len(states)} trials: "
            f"{', '.join(f'{states.count(s)} {s}' for s in sorted(set(states))) or 'none'}); "
            "run lepidopt search until one completes."
        )
    return BestTrial(run=run, study=loaded, trial=loaded.best_trial)
