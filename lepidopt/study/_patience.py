"""A worker's storage that waits out an outage: a database restarting, a dropped connection, the gRPC proxy
restarting. Every storage call that fails for want of a connection is tried again with backoff until the
storage answers or the outage has lasted ``outage`` seconds; past that the worker gives up with
StorageUnreachable, leaving its trial RUNNING for the heartbeat sweep to fail and retry from its checkpoint.

A write whose connection broke at the moment of its commit may have been stored before the error. Writing it
again is harmless for Optuna's upserts (a parameter, an attribute, an epoch's value), and a trial's end that
the storage refuses because it holds it already counts as stored. Two writes cannot be told apart: a trial
created twice, and a waiting trial claimed by the broken attempt (Optuna then takes another); either is left
RUNNING without a heartbeat, which the stale-trial sweep fails one grace period later (``_silent``).

A worker that starts while its database restarts waits the same way (``patiently``); one that gets no answer
at all, or a refusal no wait mends (a wrong password, user or database), is refused at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Iterator, TypeVar, cast

from ..errors import StorageOutage, option
from ..runs import mask_password

__all__ = ["patient", "patiently", "StorageUnreachable", "StorageUnavailable", "without_waiting", "is_connection_error",
           "connection_error_text", "unreachable_in", "outage_error"]

log = logging.getLogger("lepidopt")
_FIRST_WAIT, _LONGEST_WAIT = 0.25, 2.0  # seconds between attempts: doubling from the first to the longest
_QUIET = _LONGEST_WAIT * 2  # seconds without a failure that end an outage: no call is still retrying
# What the database driver says of a refused connection when waiting cannot help (PostgreSQL's and MySQL's
# words). A host name that does not resolve is waited for: a restarting container's name may not, for a while.
_LASTING = ("password authentication failed", "no pg_hba.conf entry", "does not exist", "access denied for user",
            "unknown database")
# What a server says while it restarts. A worker that starts then waits for it; one that gets no answer at all
# is refused at once, since a wrong host or port looks the same.
_RESTARTING = ("starting up", "shutting down", "in recovery mode", "closed the connection unexpectedly",
               "terminating connection", "connection reset", "lost connection", "too many connections")
T = TypeVar("T")


class StorageUnreachable(BaseException):
    """The storage did not answer for the whole outage limit. A BaseException, so neither a trial's error
    handling nor Optuna catches it: both would try to store the failure on the storage that is gone (Optuna's
    ``_run_trial`` then dies of an UnboundLocalError). The worker turns it into a StorageOutage."""

    def __init__(self, storage: str, seconds: float, reason: str) -> None:
        super().__init__(f"storage {storage!r} unreachable for {seconds:.0f} s ({reason})")
        self.storage, self.seconds, self.reason = storage, seconds, reason


def unreachable_in(error: BaseException) -> StorageUnreachable | None:
    """The give-up ``error`` is or was raised from: Optuna turns one during its own bookkeeping into another
    error (an UnboundLocalError when it happens in the middle of storing a trial's end)."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None or isinstance(seen, StorageUnreachable):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def outage_error(gone: StorageUnreachable) -> StorageOutage:
    """What a worker that gave up on its storage says before it exits (code 11)."""
    return StorageOutage(
        f"storage {gone.storage!r}", f"did not answer for {gone.seconds:.0f} s ({gone.reason}), the longest this "
        f"worker waits ({option('outage')}); a trial it was running is left to the heartbeat sweep, which retries it "
        "from its checkpoint.", fix="Start the worker again once the storage answers.")


class StorageUnavailable(Exception):
    """A call made ``without_waiting`` found the storage unreachable; the outage limit is not reached yet."""


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, is a lost or refused connection to the storage that
    waiting may mend."""
    found = _connection_error(error)
    said = str(getattr(found, "orig", None) or found).lower()  # the driver's words, not the statement's values
    return found is not None and not any(words in said for words in _LASTING)


def _restarting(error: BaseException) -> bool:
    found = _connection_error(error)
    said = str(getattr(found, "orig", None) or found).lower()
    return is_connection_error(error) and any(words in said for words in _RESTARTING)


def _connection_error(error: BaseException) -> BaseException | None:
    from sqlalchemy import exc as sql

    try:
        import grpc
    except ImportError:
        grpc = None
    seen: BaseException | None = error
    for _ in range(10):  # the chain: Optuna's StorageInternalError is raised from SQLAlchemy's error
        if seen is None or isinstance(seen, (StorageUnreachable, StorageOutage)):  # given up on already
            return None
        if isinstance(seen, sql.DBAPIError) and seen.connection_invalidated:
            return seen
        if isinstance(seen, (sql.OperationalError, sql.InterfaceError, sql.DisconnectionError)):
            return seen
        if grpc is not None and isinstance(seen, grpc.RpcError) and seen.code() == grpc.StatusCode.UNAVAILABLE:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def connection_error_text(error: BaseException) -> str:
    """What went wrong with the connection, in a line, passwords masked."""
    cause = _connection_error(error) or error
    details = getattr(cause, "details", None)  # a gRPC error's own text; its str() is a dump of the call
    text = (details() if callable(details) else None) or str(getattr(cause, "orig", None) or cause).strip()
    return mask_password(text.splitlines()[0] if text else type(cause).__name__)[:300]


class _Outage:
    """When the storage stopped answering, shared by the worker's threads (the trial's and the heartbeat's)."""

    def __init__(self, storage: str, limit: float) -> None:
        self.storage, self.limit = storage, limit
        self.since: float | None = None
        self.announced = False
        self.last_failure = 0.0
        self.gave_up: StorageUnreachable | None = None
        self.lock = threading.Lock()

    def failed(self, error: Exception) -> float:
        """Seconds left before giving up; raises StorageUnreachable past the limit. An outage is announced once
        a call (of any thread) fails ``_FIRST_WAIT`` or more after its first failure: a failure the next try mends
        (SQLite's file locked for a moment while another process closes it, a connection dropped by the server)
        is no news to the user."""
        with self.lock:
            self.check()
            now = time.monotonic()
            if self.since is None or (not self.announced and now - self.last_failure > _QUIET):
                self.since = now  # a one-off failure long ago, that no call answered after, is not this outage
            elif not self.announced and now - self.since >= _FIRST_WAIT:
                self.announced = True
                log.warning("storage %r unreachable (%s); waiting for it up to %.0f s", self.storage,
                            connection_error_text(error), self.limit)
            self.last_failure = now
            left = self.since + self.limit - now
            if left <= 0:
                self.gave_up = StorageUnreachable(self.storage, now - self.since, connection_error_text(error))
                self.check()
            return left

    def check(self) -> None:
        """Raises StorageUnreachable, a new one each time (an exception raised again grows its traceback), once
        the worker gave up."""
        gone = self.gave_up
        if gone is not None:
            raise StorageUnreachable(gone.storage, gone.seconds, gone.reason)

    def answered(self, *, after_failing: bool) -> None:
        """A call succeeded: the outage is over if that call had failed before, or nothing failed for a while
        (a call that succeeds at once may have been answered from a cache)."""
        if self.since is None:  # read without the lock: the common case costs nothing
            return
        with self.lock:
            if self.since is not None and (after_failing or time.monotonic() - self.last_failure > _QUIET):
                if self.announced:
                    log.warning("storage %r answers again after %.0f s", self.storage, time.monotonic() - self.since)
                self.since, self.announced = None, False


_local = threading.local()


@contextlib.contextmanager
def without_waiting() -> Iterator[None]:
    """Storage calls of this thread in the block raise StorageUnavailable at once when the storage is unreachable,
    instead of waiting for it (the outage still counts towards the limit)."""
    before = getattr(_local, "hurried", False)
    _local.hurried = True
    try:
        yield
    finally:
        _local.hurried = before


def _wait_out(outage: _Outage, attempt: Callable[[], T], *,
              stored_before: Callable[[Exception], bool] | None = None,
              waits_for: Callable[[BaseException], bool] = is_connection_error) -> T:
    """``attempt()``, tried again while it fails for want of a connection (``waits_for``), until ``outage`` gives
    up. An attempt refused after a failed one, because the failed one was ``stored_before``, counts as done
    (True)."""
    wait, failed = _FIRST_WAIT, False
    while True:
        outage.check()
        try:
            result = attempt()
        except Exception as error:
            if failed and stored_before is not None and stored_before(error):
                outage.answered(after_failing=True)
                return cast(T, True)
            if not waits_for(error):
                raise
            left, failed = outage.failed(error), True
            if getattr(_local, "hurried", False):
                raise StorageUnavailable(connection_error_text(error)) from None
            time.sleep(min(wait, left))
            wait = min(wait * 2, _LONGEST_WAIT)
            continue
        outage.answered(after_failing=failed)
        return result


def patiently(attempt: Callable[[], T], *, url: str, outage: float) -> T:
    """``attempt()`` (opening the storage at ``url``), waiting up to ``outage`` seconds for a storage that does not
    answer yet while it restarts; StorageOutage past that (nothing was started, so nothing is left to the sweep)."""
    try:
        return _wait_out(_Outage(mask_password(url), outage), attempt, waits_for=_restarting)
    except StorageUnreachable as gone:
        raise StorageOutage(
            f"storage {gone.storage!r}", f"did not answer for {gone.seconds:.0f} s ({gone.reason}), the longest this "
            f"worker waits ({option('outage')}); nothing was started.",
            fix="Check the host, port, database and user; or start the worker again once the storage answers."
        ) from None


def _patient_call(name: str) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self._inner, name)
        stored_before = None
        if name == "set_trial_state_values":
            def stored_before(error: Exception) -> bool:
                return _stored_before(self._inner, error, args, kwargs)
        return _wait_out(self._outage, lambda: method(*args, **kwargs), stored_before=stored_before)

    call.__name__ = name
    return call


def _stored_before(storage: Any, error: Exception, args: tuple, kwargs: dict) -> bool:
    """Whether a trial's state change, tried again after its connection broke, is refused because the broken
    attempt was stored after all (its commit went through, its answer was lost)."""
    import optuna

    if not isinstance(error, optuna.exceptions.UpdateFinishedTrialError):
        return False
    called = dict(zip(("trial_id", "state"), args)) | kwargs
    return bool(storage.get_trial(called["trial_id"]).state == called["state"])


def _record_heartbeat(self: Any, trial_id: int) -> None:
    """A heartbeat the storage cannot take is skipped, never raised: Optuna's heartbeat thread would end on an
    error while the trial trains on, and the trial would be taken for dead. The trial's own calls decide when
    to give up."""
    try:
        _patient_call("record_heartbeat")(self, trial_id)
    except StorageUnreachable:
        pass
    except Exception as error:
        log.warning("heartbeat of trial id %d not written: %s", trial_id, connection_error_text(error))


def _storage_class(heartbeat: bool) -> type:
    from optuna.storages import BaseStorage
    from optuna.storages._heartbeat import BaseHeartbeat

    bases: tuple[type, ...] = (BaseStorage, BaseHeartbeat) if heartbeat else (BaseStorage,)
    names = {name for base in bases for name, value in vars(base).items()
             if callable(value) and (not name.startswith("_") or name == "_get_stale_trial_ids")}
    namespace: dict[str, Any] = {name: _patient_call(name) for name in names}
    if heartbeat:
        namespace["record_heartbeat"] = _record_heartbeat
    namespace["__init__"] = _init
    namespace["__getattr__"] = _getattr
    namespace["__doc__"] = "An Optuna storage whose calls wait out an outage of the storage they call (patient())."
    return type("PatientHeartbeatStorage" if heartbeat else "PatientStorage", bases, namespace)


def _init(self: Any, inner: Any, given: Any, outage: _Outage) -> None:
    self._inner, self._given, self._outage = inner, given, outage


def _getattr(self: Any, name: str) -> Any:
    if name.startswith("__") or name in ("_inner", "_given", "_outage"):
        raise AttributeError(name)
    return getattr(self._given, name)  # e.g. an RDB storage's engine


_CLASSES: dict[bool, type] = {}


def patient(storage: Any, *, url: str, outage: float) -> Any:
    """``storage`` (an opened Optuna storage for ``url``) with every call waiting up to ``outage`` seconds for a
    storage that stopped answering. An RDB storage keeps Optuna's in-process cache of finished trials."""
    import optuna
    from optuna.storages._heartbeat import BaseHeartbeat

    inner = optuna.storages.get_storage(storage)
    heartbeat = isinstance(inner, BaseHeartbeat)
    if heartbeat not in _CLASSES:
        _CLASSES[heartbeat] = _storage_class(heartbeat)
    return _CLASSES[heartbeat](inner, storage, _Outage(mask_password(url), outage))
