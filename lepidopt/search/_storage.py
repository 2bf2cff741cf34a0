"""Storage URLs: sqlite:///..., postgresql://..., mysql://... and journal:PATH, opened with clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import MissingExtraError, StorageError
from ..runs import mask_password
from ._experimental import quietly

__all__ = ["open_storage", "check_storage_url", "is_local_file_storage", "Heartbeat"]

_DRIVERS = {"postgresql": ("psycopg2", "postgres"), "mysql": ("pymysql", "mysql")}


def is_local_file_storage(url: str) -> bool:
    """SQLite and journal files: opening them creates them, so open them only once there is work to keep."""
    return url.startswith(("sqlite:", "journal:"))


def check_storage_url(url: str) -> str:
    """Check the URL's form and driver without connecting or creating anything; returns the URL to open."""
    shown = mask_password(url)
    if url.startswith("journal:"):
        path = Path(url[len("journal:") :])
        if not path.parent.is_dir():
            raise StorageError(f"storage {shown!r}: the folder {str(path.parent)!r} of the journal file does not exist.")
        return url
    scheme = url.split("://", 1)[0] if "://" in url else ""
    dialect = scheme.split("+", 1)[0]
    if dialect not in ("sqlite", "postgresql", "mysql"):
        raise StorageError(
            f"storage {shown!r}: not a storage URL lepidopt knows. Use sqlite:///PATH, "
            "postgresql://USER:PASSWORD@HOST/DB, mysql://USER:PASSWORD@HOST/DB or journal:PATH."
        )
    if dialect in _DRIVERS and "+" not in scheme:
        module, extra = _DRIVERS[dialect]
        try:
            __import__(module)
        except ImportError:
            raise MissingExtraError(
                f"storage {shown!r}: needs the {module} driver; install it with pip install 'lepidopt[{extra}]'."
            ) from None
        # Name the driver: SQLAlchemy's default for a bare scheme differs between versions.
        url = f"{dialect}+{module}://" + url.split("://", 1)[1]
    if dialect == "sqlite" and not (url.split(":///", 1)[1] if ":///" in url else ""):
        raise StorageError(f"storage {shown!r}: an SQLite URL needs a file path, e.g. sqlite:///results/x/study.db.")
    return url


@dataclasses.dataclass(frozen=True)
class Heartbeat:
    """Dead-worker detection on SQLite, PostgreSQL and MySQL storages: a running trial whose worker has
    not written a heartbeat for ``grace`` seconds is failed when a worker next asks for a trial, and
    enqueued again with the same parameters up to ``retries`` times (it resumes from its checkpoint).
    Journal storages have no heartbeat: ``lepidopt recover`` does it by hand."""

    interval: int = 60
    grace: int = 180
    retries: int = 3

    def __post_init__(self) -> None:
        if self.interval < 1 or self.grace <= self.interval:
            raise StorageError(f"heartbeat every {self.interval} s with a grace of {self.grace} s: the interval must "
                               "be at least 1 s and the grace period longer than the interval (e.g. 60 and 180).")
        if self.retries < 0:
            raise StorageError(f"retries {self.retries}: must be 0 or more.")

    def storage_options(self) -> dict:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        return dict(heartbeat_interval=self.interval, grace_period=self.grace,
                    heartbeat_stale_trial_callback=quietly(RetryHeartbeatStaleTrialCallback, max_retry=self.retries))


def open_storage(url: str, *, heartbeat: Heartbeat | None = None):
    """An Optuna storage for ``url``, with ``heartbeat`` on the storages that have one; every error masks
    the password and says how to fix the URL."""
    import optuna

    shown = mask_password(url)
    url = check_storage_url(url)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:") :]))
    if url.startswith("sqlite:///"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    try:
        options = heartbeat.storage_options() if heartbeat else {}
        if url.startswith("sqlite:"):
            return _fast_sqlite(quietly(optuna.storages.RDBStorage, url=url, **options))
        return quietly(optuna.storages.RDBStorage, url=url, engine_kwargs={"pool_pre_ping": True}, **options)
    except Exception as exc:
        reason = mask_password(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise StorageError(f"storage {shown!r}: cannot be opened ({reason}). Check the host, port, database and user.") from None


def _fast_sqlite(storage):
    """SQLite made safe for many worker processes, and quicker.

    Every transaction starts with BEGIN IMMEDIATE, taking the write lock before its first read:
    Python's sqlite3 otherwise reads outside any transaction, so two workers could both see the same
    waiting trial (the baseline, a retry) as free and both run it (seen with two workers; SQLAlchemy
    documents this recipe for pysqlite). And the write-ahead log with fsync at checkpoints instead of
    at every commit: a trial writes a row per epoch and a synchronous commit costs ~3 ms. A crashed
    process loses nothing committed; a power cut may lose the last commits. Both need a local disk,
    as SQLite does anyway.
    """
    from sqlalchemy import event

    def on_connect(connection, _record) -> None:
        connection.isolation_level = None  # transactions are begun below, not by the sqlite3 module
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")  # many workers may queue for the write lock
        cursor.close()

    def on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(storage.engine, "connect", on_connect)
    event.listen(storage.engine, "begin", on_begin)
    storage.engine.dispose()  # the connection Optuna opened to set the schema up predates the listeners
    return storage
