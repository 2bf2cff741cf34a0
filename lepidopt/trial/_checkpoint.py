"""Per-epoch checkpoints of a trial under results/<study>/trials/<n>/, so that a retried trial resumes
from its last completed epoch instead of from scratch.

n is the number of the first trial of a retry chain: every retry of trial 5 reads and writes
trials/5/. A checkpoint is the model's weights and its optimizer's state as .npz files named by the
step, and state.json (phase, epoch, step, history) written last and atomically: state.json always
names files that are complete. Older steps are deleted once a newer one is in place, and the folder
is removed when the trial ends (complete, pruned or failed); an interrupted or killed trial keeps it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import replacing, write_text_atomically
from .._signals import checkpoint_in_progress

if TYPE_CHECKING:
    import keras

__all__ = ["Checkpoints", "Saved", "discard"]


@dataclasses.dataclass(frozen=True)
class Saved:
    phase: str  # "head" or "finetune"
    epoch: int  # the last completed epoch of that phase
    step: int
    history: list[dict[str, Any]]  # one entry per completed epoch of both phases, steps 0..step

    @property
    def position(self) -> dict[str, Any]:
        """Where a resumed trial picks up, as its ``resumed_from`` user attribute records it."""
        return {"phase": self.phase, "epoch": self.epoch, "step": self.step}


class Checkpoints:
    def __init__(self, folder: str | Path, *, head_every: float = 30.0) -> None:
        """``head_every``: seconds between checkpoints in phase 1, whose epochs are often cheaper to redo
        than to save; phase 2 saves after every epoch."""
        self.folder = Path(folder)
        self.head_every = head_every
        self._last = time.monotonic()

    def latest(self) -> Saved | None:
        path = self.folder / "state.json"
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        return Saved(phase=state["phase"], epoch=state["epoch"], step=state["step"], history=state["history"])

    def due(self, phase: str) -> bool:
        return phase == "finetune" or time.monotonic() - self._last >= self.head_every

    def save(self, phase: str, epoch: int, history: list[dict[str, Any]], model: keras.Model) -> None:
        step = len(history) - 1
        with checkpoint_in_progress():
            self.folder.mkdir(parents=True, exist_ok=True)
            store: dict[str, np.ndarray] = {}
            model.optimizer.save_own_variables(store)
            for name, arrays in (("weights", {f"w{i}": w for i, w in enumerate(model.get_weights())}),
                                 ("optimizer", store)):
                with replacing(self.folder / f"step-{step}.{name}.npz") as tmp:
                    np.savez(tmp, **arrays)
            write_text_atomically(self.folder / "state.json", json.dumps(
                {"phase": phase, "epoch": epoch, "step": step, "history": history}))
            for old in self.folder.glob("step-*.npz"):
                if int(old.name.split(".")[0].split("-")[1]) != step:
                    old.unlink(missing_ok=True)
        self._last = time.monotonic()

    def restore(self, model: keras.Model, saved: Saved) -> None:
        """Put the saved weights and optimizer state into ``model`` (built and compiled alike)."""
        with np.load(self.folder / f"step-{saved.step}.weights.npz") as weights:
            model.set_weights([weights[f"w{i}"] for i in range(len(weights.files))])
        model.optimizer.build(model.trainable_variables)
        with np.load(self.folder / f"step-{saved.step}.optimizer.npz") as store:
            model.optimizer.load_own_variables({k: store[k] for k in store.files})

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def discard(checkpoints: Checkpoints | None) -> None:
    """Remove a trial's checkpoints once it has ended, if it kept any."""
    if checkpoints is not None:
        checkpoints.remove()
