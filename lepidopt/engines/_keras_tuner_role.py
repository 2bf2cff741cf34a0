"""A process's place in a distributed Keras Tuner search: the chief serves the oracle, the others ask it for
trials."""

from __future__ import annotations

import dataclasses
import os

from ..errors import SettingError, StudyError, command, option

__all__ = ["KerasTunerRole"]


@dataclasses.dataclass(frozen=True)
class KerasTunerRole:
    """A process's place in a distributed Keras Tuner search, as Keras Tuner reads it from its environment."""

    tuner_id: str | None
    oracle_ip: str | None
    oracle_port: int | None

    _ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")

    @classmethod
    def from_flags(cls, *, tuner_id: str | None = None, oracle_ip: str | None = None,
                   oracle_port: int | None = None) -> "KerasTunerRole":
        """The role the flags give, each one missing read from its KERASTUNER_* environment variable."""
        env_id, env_ip, env_port = (os.environ.get(name) for name in cls._ENV)
        return cls(tuner_id=tuner_id or env_id, oracle_ip=oracle_ip or env_ip,
                   oracle_port=oracle_port or (int(env_port) if env_port and env_port.isdigit() else None))

    def export(self) -> None:
        """Check the role and put it where Keras Tuner reads it."""
        tuner_id, oracle_ip, oracle_port = self.tuner_id, self.oracle_ip, self.oracle_port
        if not (tuner_id and oracle_ip and oracle_port):
            missing = [option(name) for name, value in (("tuner_id", tuner_id), ("oracle_ip", oracle_ip),
                                                        ("oracle_port", oracle_port)) if not value]
            raise StudyError(
                "Keras Tuner worker", f"needs {', '.join(missing)} (or {', '.join(self._ENV)}): one worker with "
                f"{option('tuner_id', 'chief')} serves the oracle at {option('oracle_ip')} and "
                f"{option('oracle_port')}, the others ({option('tuner_id', 'tuner0')}, tuner1, ...) run its trials.",
                fix=f"To run a Keras Tuner study in one process, use {command('search')}.")
        if not 0 < oracle_port < 65536:
            raise SettingError("oracle_port", oracle_port, "must be a TCP port, 1 to 65535.")
        os.environ.update(dict(zip(self._ENV, (tuner_id, oracle_ip, str(oracle_port)))))
