"""The package's exceptions: each also inherits the builtin it refines, so callers may catch either."""

from typing import Any

__all__ = [
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


class LepidoptError(Exception):
    """Base of every error lepidopt raises on purpose; the CLI prints these without a traceback."""

    exit_code = 1


class SettingError(LepidoptError, ValueError):
    """A setting given a value it cannot take. ``setting`` is its Python argument's name; the command line
    shows the flag instead and reports it as a usage error (exit code 2)."""

    exit_code = 2

    def __init__(self, setting: str, value: Any, rule: str) -> None:
        self.setting, self.value, self.rule = setting, value, rule
        super().__init__(self.named(setting))

    def named(self, name: str) -> str:
        """The message with the setting called ``name`` (a flag such as --n-trials)."""
        return f"{name} {self.value!r}: {self.rule}"


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

    def __init__(self, message: str, *, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number  # 143 for SIGTERM, 130 for SIGINT, as shells report them


class TooManyFailures(StudyError):
    """A worker stopped after too many consecutive failed trials."""

    exit_code = 10
