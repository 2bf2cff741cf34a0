"""The package's exceptions: each also inherits the builtin it refines, so callers may catch either."""

from __future__ import annotations

from typing import Any

__all__ = [
    "message",
    "LepidoptError",
    "SettingError",
    "DataError",
    "SpaceError",
    "ModelError",
    "StudyError",
    "StorageError",
    "MissingExtraError",
    "ReportError",
    "WorkerInterrupted",
    "TooManyFailures",
]


def message(thing: str, rule: str, fix: str = "") -> str:
    """lepidopt's one form of error message: what it is about (named as the user wrote it, with its value),
    the rule it breaks, and what to do: 'THING: RULE FIX'."""
    return f"{thing}: {rule}" + (f" {fix}" if fix else "")


def _rebuilt(cls: type[LepidoptError], args: tuple[Any, ...], state: dict[str, Any]) -> LepidoptError:
    error = cls.__new__(cls, *args)
    error.__dict__.update(state)
    return error


class LepidoptError(Exception):
    """Base of every error lepidopt raises on purpose; the CLI prints these without a traceback. Its message is
    ``message(thing, rule, fix)``, and the three parts stay on it as ``thing``, ``rule`` and ``fix``."""

    exit_code = 1

    def __init__(self, thing: str, rule: str, *, fix: str = "") -> None:
        self.thing, self.rule, self.fix = thing, rule, fix
        super().__init__(message(thing, rule, fix))

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled whole: Exception's own pickling would call __init__ with the message alone
        return _rebuilt, (type(self), self.args, self.__dict__)


class SettingError(LepidoptError, ValueError):
    """A setting given a value it cannot take. ``setting`` is its Python argument's name; the command line
    shows the flag instead and reports it as a usage error (exit code 2)."""

    exit_code = 2

    def __init__(self, setting: str, value: Any, rule: str, *, fix: str = "") -> None:
        self.setting, self.value = setting, value
        super().__init__(f"{setting} {value!r}", rule, fix=fix)

    def named(self, name: str) -> str:
        """The message with the setting called ``name`` (a flag such as --n-trials)."""
        return message(f"{name} {self.value!r}", self.rule, self.fix)


class DataError(LepidoptError, ValueError):
    """A data source that cannot be used as given."""

    exit_code = 3


class SpaceError(LepidoptError, ValueError):
    """A search space that breaks a rule of the space format."""

    exit_code = 4


class ModelError(LepidoptError, ValueError):
    """A model setting that cannot be built (weights file, image size, stage name)."""

    exit_code = 5


class StudyError(LepidoptError, RuntimeError):
    """A study that does not exist, or that a command cannot continue as asked."""

    exit_code = 6


class StorageError(LepidoptError, ValueError):
    """A storage URL that is malformed or cannot be reached."""

    exit_code = 7


class MissingExtraError(LepidoptError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""

    exit_code = 8


class ReportError(LepidoptError, ValueError):
    """Input the export or the report cannot work on (embeddings, labels, a study without a finished trial)."""

    exit_code = 9


class WorkerInterrupted(LepidoptError):
    """SIGTERM or SIGINT stopped a worker; its trial is left to be retried from its checkpoint."""

    def __init__(self, thing: str, rule: str, *, fix: str = "", signal_number: int) -> None:
        super().__init__(thing, rule, fix=fix)
        self.exit_code = 128 + signal_number  # 143 for SIGTERM, 130 for SIGINT, as shells report them


class TooManyFailures(StudyError):
    """A worker stopped after too many consecutive failed trials."""

    exit_code = 10
