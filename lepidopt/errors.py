"""The package's exceptions: each also inherits the builtin it refines, so callers may catch either."""

from __future__ import annotations

import contextlib
import re
import shlex
from typing import Any, Callable, Iterator

__all__ = [
    "message",
    "option",
    "command",
    "rendered",
    "naming_flags",
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
    "StorageOutage",
]


def message(thing: str, rule: str, fix: str = "") -> str:
    """lepidopt's one form of error message: what it is about (named as the user wrote it, with its value),
    the rule it breaks, and what to do: 'THING: RULE FIX'."""
    return f"{thing}: {rule}" + (f" {fix}" if fix else "")


# A setting named in a message is marked, so that one message reads right wherever it arrives: the Python
# argument where it reaches Python, the command line's flag where it reaches the command line.
_OPEN, _SEP, _CLOSE, _COMMAND = "\x02", "\x1f", "\x03", "!"
_MARKED = re.compile(f"{_OPEN}([^{_CLOSE}]*){_CLOSE}")


def option(name: str, *value: Any) -> str:
    """The setting whose Python argument is ``name``, as a message names it: ``name=`` (``name='value'``) in
    Python, its flag (``--flag value``) on the command line."""
    if not value:
        return f"{_OPEN}{name}{_CLOSE}"
    (given,) = value
    shown = shlex.quote(given) if isinstance(given, str) else repr(given)
    return f"{_OPEN}{name}{_SEP}{given!r}{_SEP}{shown}{_CLOSE}"


def command(name: str, *options: str, function: str | None = None) -> str:
    """The command ``name`` with ``options`` to fill in, as a message suggests it: ``lepidopt name --a ... --b
    ...`` on the command line, ``lepidopt.function(a=..., b=...)`` in Python (``function`` defaults to ``name``)."""
    return f"{_OPEN}{_COMMAND}{name}/{function or name}{_SEP}{_SEP.join(options)}{_CLOSE}"


_command_line_flag: Callable[[str], str] | None = None


@contextlib.contextmanager
def naming_flags(flag: Callable[[str], str]) -> Iterator[None]:
    """Within this block, messages made in this process name settings by ``flag`` (a Python argument's name to
    its command-line flag): the command line wraps its commands in it."""
    global _command_line_flag
    before, _command_line_flag = _command_line_flag, flag
    try:
        yield
    finally:
        _command_line_flag = before


def rendered(text: str, flag: Callable[[str], str] | None = None) -> str:
    """``text`` with its marked settings named by ``flag`` (a Python argument's name to its command-line flag),
    by default as Python arguments, or as flags inside :func:`naming_flags`."""
    flag = flag or _command_line_flag

    def name(match: re.Match[str]) -> str:
        fields = match.group(1).split(_SEP)
        if fields[0].startswith(_COMMAND):
            (name, function), options = fields[0][len(_COMMAND):].split("/"), [field for field in fields[1:] if field]
            if flag is None:
                return f"lepidopt.{function}({', '.join(f'{option}=...' for option in options)})"
            return " ".join(["lepidopt", name, *(f"{flag(option)} ..." for option in options)])
        if len(fields) == 1:
            return f"{fields[0]}=" if flag is None else flag(fields[0])
        setting, python_value, shell_value = fields
        return f"{setting}={python_value}" if flag is None else f"{flag(setting)} {shell_value}"

    return _MARKED.sub(name, text)


def _rebuilt(cls: type[LepidoptError], args: tuple[Any, ...], state: dict[str, Any]) -> LepidoptError:
    error = cls.__new__(cls, *args)
    error.__dict__.update(state)
    return error


class LepidoptError(Exception):
    """Base of every error lepidopt raises on purpose; the CLI prints these without a traceback. Its message is
    ``message(thing, rule, fix)``, and the three parts stay on it as ``thing``, ``rule`` and ``fix``. Settings
    the parts name with :func:`option` read as Python arguments here and as flags in :meth:`for_command_line`."""

    exit_code = 1

    def __init__(self, thing: str, rule: str, *, fix: str = "") -> None:
        self._marked = message(thing, rule, fix)
        self.thing, self.rule, self.fix = rendered(thing), rendered(rule), rendered(fix)
        super().__init__(rendered(self._marked))

    def for_command_line(self, flag: Callable[[str], str]) -> str:
        """The message with each setting it names shown as ``flag(name)``, the command line's flag."""
        return rendered(self._marked, flag)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled whole: Exception's own pickling would call __init__ with the message alone
        return _rebuilt, (type(self), self.args, self.__dict__)


class SettingError(LepidoptError, ValueError):
    """A setting given a value it cannot take. ``setting`` is its Python argument's name; the command line
    shows the flag instead and reports it as a usage error (exit code 2)."""

    exit_code = 2

    def __init__(self, setting: str, value: Any, rule: str, *, fix: str = "") -> None:
        self.setting, self.value = setting, value
        super().__init__(option(setting, value), rule, fix=fix)


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


class StorageOutage(StorageError):
    """A worker's storage stayed unreachable past the worker's outage limit; its trial is left RUNNING for the
    heartbeat sweep, which fails it and retries it from its checkpoint."""

    exit_code = 11
