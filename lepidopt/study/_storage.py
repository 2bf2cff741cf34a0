"""Storage URLs: sqlite:///..., postgresql://..., mysql://..., journal:PATH and grpc://HOST:PORT (Optuna's storage
proxy, which ``lepidopt storage-proxy`` serves), opened with clear errors.

One rule for file storages: the folder of an SQLite or journal file must exist (a mistyped folder is
refused rather than created); the default storage, ``RESULTS/STUDY/study.db``, lives in the study's own
folder, which lepidopt creates.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..errors import MissingExtraError, SettingError, StorageError, option
from ..runs import mask_password, storage_file
from ._experimental import quietly
from ._grpc import heartbeat_proxy
from ._patience import patient, patiently
from ._silent import sweeping_rdb_storage

if TYPE_CHECKING:
    import sqlite3

    import optuna
    from sqlalchemy.engine import Connection
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["open_storage", "check_storage_url", "has_optuna_tables", "study_names", "Heartbeat", "grpc_address"]

_DRIVERS = {"postgresql": ("psycopg2", "postgres"), "mysql": ("pymysql", "mysql")}
# Seconds between the storage answering again and a waiting worker's heartbeat being written: a connection
# attempt under way may take its whole timeout (10 s) to fail, then the next try comes within 2 s.
_HEARTBEAT_AGAIN = 15
_GRPC_READY = 10  # seconds a worker waits for the storage proxy when it opens it
# A pooled connection is tested before use (a restarted server's connections are replaced, not failed on), and
# replaced after 10 minutes (firewalls and load balancers drop idle connections without a word); connecting
# gives up after 10 s, and PostgreSQL's TCP keepalives find a connection to a vanished host within about 25 s,
# so an unreachable host counts as an outage instead of hanging the worker.
_POOL = {"pool_pre_ping": True, "pool_recycle": 600}
_CONNECT = {"postgresql": {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                           "keepalives_count": 3},
            "mysql": {"connect_timeout": 10, "read_timeout": 60, "write_timeout": 60}}


def check_storage_url(url: str, *, own_folder: Path | None = None) -> str:
    """Check the URL's form and driver, and that a storage file's folder exists (or is ``own_folder``, the study's
    folder, which the study's creation makes), without connecting or creating anything; returns the URL to open."""
    shown = mask_password(url)
    path = storage_file(url)
    if path is not None:
        if not path.parent.is_dir() and path.parent != own_folder:
            raise StorageError(
                f"storage {shown!r}", f"the folder {str(path.parent)!r} of its file does not exist.",
                fix="Create it first, or check the path (lepidopt creates only a study's own folder, for the default "
                    "storage)."
            )
    if url.startswith("journal:"):
        return url
    if url.startswith("grpc://"):
        grpc_address(url, shown)
        return url
    scheme = url.split("://", 1)[0] if "://" in url else ""
    dialect = scheme.split("+", 1)[0]
    if dialect not in ("sqlite", "postgresql", "mysql"):
        raise StorageError(
            f"storage {shown!r}", "not a storage URL lepidopt knows.", fix="Use sqlite:///PATH, "
            "postgresql://USER:PASSWORD@HOST/DB, mysql://USER:PASSWORD@HOST/DB, journal:PATH or grpc://HOST:PORT."
        )
    if dialect in _DRIVERS and "+" not in scheme:
        module, extra = _DRIVERS[dialect]
        try:
            __import__(module)
        except ImportError:
            raise MissingExtraError(
                f"storage {shown!r}", f"needs the {module} driver; install it with pip install 'lepidopt[{extra}]'."
            ) from None
        # Name the driver: SQLAlchemy's default for a bare scheme differs between versions.
        url = f"{dialect}+{module}://" + url.split("://", 1)[1]
    if dialect == "sqlite" and path is None:
        raise StorageError(f"storage {shown!r}", "an SQLite URL needs a file path after three slashes, e.g. "
                           "sqlite:///results/x/study.db.")
    return url


def grpc_address(url: str, shown: str | None = None) -> tuple[str, int]:
    """The host and port of a grpc://HOST:PORT storage URL."""
    host, _, port = url.removeprefix("grpc://").rstrip("/").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise StorageError(f"storage {shown or url!r}", "a gRPC storage URL is grpc://HOST:PORT, e.g. "
                           "grpc://db-proxy:13000.", fix="Give the host and port lepidopt storage-proxy listens on.")
    return host, int(port)


def _grpc_storage(url: str, shown: str, heartbeat: Heartbeat | None) -> optuna.storages.BaseStorage:
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise MissingExtraError(f"storage {shown!r}", "needs grpcio and protobuf; install them with pip install "
                                "'lepidopt[grpc]'.") from None
    from optuna.storages import GrpcStorageProxy

    host, port = grpc_address(url, shown)
    if heartbeat is None:
        storage = quietly(GrpcStorageProxy, host=host, port=port)
    else:
        storage = quietly(heartbeat_proxy, host=host, port=port, interval=heartbeat.interval, grace=heartbeat.grace,
                          stale_callback=heartbeat.storage_options()["heartbeat_stale_trial_callback"])
    try:
        storage.wait_server_ready(timeout=_GRPC_READY)
    except ConnectionError:
        storage.close()
        raise StorageError(f"storage {shown!r}", f"no storage proxy answers at {host}:{port} within {_GRPC_READY} s.",
                           fix="Start it with lepidopt storage-proxy --storage DATABASE_URL --host HOST --port "
                               "PORT, or check the host and port.") from None
    return storage


@dataclasses.dataclass(frozen=True)
class Heartbeat:
    """Dead-worker detection, and how long a live worker waits for a storage that stopped answering.

    On SQLite, PostgreSQL and MySQL storages a running trial whose worker has not written a heartbeat for
    ``grace`` seconds is failed when a worker next asks for a trial, and enqueued again with the same
    parameters up to ``retries`` times (it resumes from its checkpoint). Journal storages have no heartbeat:
    ``lepidopt recover`` does it by hand.

    A worker whose storage is unreachable (a database restarting, a dropped connection) waits for it up to
    ``outage`` seconds, then exits with its trial left for that sweep. By default it waits as long as its trial
    can stay silent without being taken for dead: ``grace`` less one ``interval`` (the last heartbeat may
    be that old when the outage starts) less 15 s for the next heartbeat to be written once the storage is back.
    """

    interval: int = 60
    grace: int = 300
    retries: int = 3
    outage: float | None = None  # seconds; None: grace - interval - 15

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise SettingError("interval", self.interval, "seconds between heartbeats must be at least 1 (e.g. 60).")
        if self.grace <= self.interval:
            raise SettingError("grace", self.grace, f"must be longer than the heartbeat's interval, {self.interval} s "
                               "(e.g. 60 and 300): a live trial is silent for up to one interval.")
        if self.retries < 0:
            raise SettingError("retries", self.retries, "must be 0 or more.")
        longest = max(self.grace - self.interval - _HEARTBEAT_AGAIN, 0)
        if self.outage is None:
            object.__setattr__(self, "outage", float(longest))
        elif self.outage < 0 or self.outage > longest:
            raise SettingError(
                "outage", self.outage, f"a worker waits for its storage at most {option('grace', self.grace)} less "
                f"{option('interval', self.interval)} less {_HEARTBEAT_AGAIN} s, {longest} s (from 0): longer, and the "
                "other workers take its trial for dead while it still waits.",
                fix=f"Lower it, or raise the grace period "
                    f"({option('grace', int(self.outage) + self.interval + _HEARTBEAT_AGAIN)})."
            )

    def storage_options(self) -> dict:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        return dict(heartbeat_interval=self.interval, grace_period=self.grace,
                    heartbeat_stale_trial_callback=quietly(RetryHeartbeatStaleTrialCallback, max_retry=self.retries))


def open_storage(url: str, *, heartbeat: Heartbeat | None = None, create: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``, with ``heartbeat`` on the storages that have one; every error masks
    the password and says how to fix the URL. With ``create=False`` nothing is made: a storage file must
    exist, and a database's tables are left as they are (``study_names`` is then empty)."""
    import optuna

    shown = mask_password(url)
    url = check_storage_url(url)
    path = storage_file(url)
    if not create and path is not None and not path.is_file():
        raise StorageError(f"storage {shown!r}", f"its file {str(path)!r} does not exist, so it holds no study.",
                           fix="Check the path: a relative path is read from the current folder.")
    if url.startswith("grpc://"):
        proxy = _grpc_storage(url, shown, heartbeat)
        return proxy if heartbeat is None else patient(proxy, url=url, outage=cast(float, heartbeat.outage))
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise StorageError(f"storage {shown!r}", f"cannot be opened ({exc.strerror or exc}: {str(path)!r}).",
                               fix="Give the path of a journal file, new or made by an earlier study.") from None
    options = heartbeat.storage_options() if heartbeat else {}
    if not create:
        options["skip_table_creation"] = True

    def opened() -> optuna.storages.RDBStorage:
        if url.startswith("sqlite"):
            return _fast_sqlite(quietly(sweeping_rdb_storage(), url=url, **options))
        connect = _CONNECT[url.split("+", 1)[0]]
        return quietly(sweeping_rdb_storage(), url=url, engine_kwargs=dict(_POOL, connect_args=connect), **options)

    try:  # a worker (with a heartbeat) waits for a database that does not answer yet, as a running one does
        storage = (patiently(opened, url=url, outage=cast(float, heartbeat.outage))
                   if heartbeat is not None and path is None else opened())  # a file: no wait mends it
    except Exception as exc:
        reason = mask_password(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise StorageError(
            f"storage {shown!r}", f"cannot be opened ({reason}).", fix="Check the host, port, database and user."
        ) from None
    return storage if heartbeat is None else patient(storage, url=url, outage=cast(float, heartbeat.outage))


def has_optuna_tables(url: str) -> bool:
    """Whether the database at ``url`` holds Optuna's tables, asked without creating them (a file storage: True)."""
    shown = mask_password(url)
    url = check_storage_url(url)
    if url.startswith(("journal:", "grpc://")):
        return True  # a file holds them once written to; a proxy's database has them from the proxy's start
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, connect_args=_CONNECT.get(url.split("+", 1)[0], {}))
    try:
        return sqlalchemy.inspect(engine).has_table("studies")
    except Exception as exc:
        reason = mask_password(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise StorageError(f"storage {shown!r}", f"cannot be opened ({reason}).",
                           fix="Check the host, port, database and user.") from None
    finally:
        engine.dispose()


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The names of the studies ``storage`` holds; none in a database without Optuna's tables."""
    import optuna

    engine = getattr(storage, "engine", None)
    if engine is not None:
        from sqlalchemy import inspect

        if not inspect(engine).has_table("studies"):
            return []
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def _fast_sqlite(storage: optuna.storages.RDBStorage) -> optuna.storages.RDBStorage:
    """SQLite made safe for many worker processes, and quicker.

    Every transaction starts with BEGIN IMMEDIATE, taking the write lock before its first read:
    Python's sqlite3 otherwise reads outside any transaction, so two workers could both see the same
    waiting trial (the baseline, a retry) as free and both run it (SQLAlchemy documents this recipe for
    pysqlite). And the write-ahead log with fsync at checkpoints instead of at every commit, since a trial
    writes a row per epoch. A crashed process loses nothing committed; a power cut may lose the last
    commits. Both need a local disk, as SQLite does anyway.
    """
    from sqlalchemy import event

    def on_connect(connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        connection.isolation_level = None  # transactions are begun below, not by the sqlite3 module
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")  # many workers may queue for the write lock
        cursor.close()

    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(storage.engine, "connect", on_connect)
    event.listen(storage.engine, "begin", on_begin)
    storage.engine.dispose()  # the connection Optuna opened to set the schema up predates the listeners
    return storage
