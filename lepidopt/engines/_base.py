"""What an engine provides, and the registry the rest of lepidopt finds engines in by name.

An engine drives a study: it chooses each trial's recipe and runs it through ``run_trial``. Adding one is a
module with a subclass of ``Engine`` and ``@register`` on it, imported in ``engines/__init__.py``.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar, Mapping, TypeVar

from .._signals import Interrupted
from ..errors import SettingError
from ..runs import Run
from ..study import attrs
from ..trial import StudyData
from ._policy import TrialPolicy

__all__ = ["Engine", "register", "get_engine", "engine_names"]


class Engine(abc.ABC):
    """One way of searching a space; the study in its storage is its record, whichever engine ran it."""

    name: ClassVar[str]
    recycles: ClassVar[bool] = False  # its trials can run in worker processes that are replaced

    def check(self, run: Run) -> None:
        """Fail before anything is made when this engine cannot search ``run`` (a missing extra, a space it
        cannot express)."""

    @abc.abstractmethod
    def settle(self, settings: dict[str, Any], given: Mapping[str, Any]) -> None:
        """Check the engine's own settings in a run being resolved and complete them in place (its defaults;
        None for what it does not use). ``given`` holds what the caller set, so that a setting of another
        engine, given by name, is refused rather than dropped. Raises SettingError."""

    def label(self, run: Run) -> str:
        """The engine as the study records it and ``status`` shows it."""
        return self.name

    def initialize(self, study: Any, run: Run) -> None:
        """The engine's part of a new study's record: its label (and trials to run first)."""
        study.set_user_attr(attrs.ENGINE, self.label(run))

    def status_note(self, run: Run) -> str:
        """What ``status`` says of this engine's trials under its header, if anything."""
        return ""

    def join(self, run: Run, role: Any) -> None:
        """Prepare this process to work on ``run``'s study as a worker; ``role`` is its place in a distributed
        search, for engines that have one."""

    @abc.abstractmethod
    def run_trials(self, run: Run, study: Any, data: StudyData, *, n_trials: int | None, timeout: float | None,
                   policy: TrialPolicy, on_trial: Callable[[Any, Any], None] | None = None,
                   sampler_seed: int | None = None) -> None:
        """Run trials until the study holds ``n_trials`` finished trials in total, or ``timeout`` seconds pass;
        ``on_trial(study, trial)`` after each one, where the engine supports it; ``sampler_seed``: this process's
        seed for choosing recipes, where the engine's choices are made in the process (default: the run's).
        Raises Interrupted on a SIGTERM or SIGINT, TooManyFailures after ``policy.max_failures`` failed trials
        in a row."""

    def after_interrupt(self, study: Any, stop: Interrupted, *, retries: int) -> str:
        """Leave the interrupted trial to be run again; returns what the user is told of it ('' for nothing)."""
        return ""


_E = TypeVar("_E", bound=type[Engine])
_ENGINES: dict[str, Engine] = {}


def register(engine_class: _E) -> _E:
    """Class decorator: make the engine known by its ``name``."""
    _ENGINES[engine_class.name] = engine_class()
    return engine_class


def engine_names() -> tuple[str, ...]:
    """The names of the registered engines, the default first."""
    return tuple(_ENGINES)


def get_engine(name: str) -> Engine:
    """The registered engine called ``name``."""
    try:
        return _ENGINES[name]
    except KeyError:
        raise SettingError("engine", name, f"must be one of {', '.join(_ENGINES)}.") from None
