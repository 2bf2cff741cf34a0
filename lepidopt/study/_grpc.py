"""Optuna's gRPC storage proxy, for many workers: the server lepidopt storage-proxy runs in front of a database,
and the workers' client with the heartbeat Optuna gives only its RDB storage.

Optuna's heartbeat is written by the RDB storage into its own table, which the proxy's protocol does not reach,
so a worker behind the proxy keeps its trial's heartbeat in a system attribute of the trial instead (the time
on the worker's clock: the hosts' clocks must agree to well within the grace period, as NTP keeps them). The
rest is Optuna's own machinery: its heartbeat thread, its stale-trial sweep when a worker asks for a trial,
and the retry callback that enqueues the dead worker's trial again to resume from its checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable

from ..runs import mask_password
from . import _attrs as attrs
from ._patience import connection_error_text, is_connection_error

if TYPE_CHECKING:
    import grpc
    import optuna

__all__ = ["heartbeat_proxy", "make_proxy_server", "serve_proxy"]

log = logging.getLogger("lepidopt")


def heartbeat_proxy(host: str, port: int, *, interval: int, grace: int,
                    stale_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None]) -> Any:
    """Optuna's GrpcStorageProxy for ``host:port``, with a heartbeat every ``interval`` seconds and trials silent for
    ``grace`` seconds stale."""
    from optuna.storages import GrpcStorageProxy
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    class HeartbeatGrpcStorageProxy(GrpcStorageProxy, BaseHeartbeat):
        def record_heartbeat(self, trial_id: int) -> None:
            self.set_trial_system_attr(trial_id, attrs.HEARTBEAT, [trial_id, time.time()])

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            now, stale = time.time(), []
            for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
                beat = _own_beat(trial)
                if beat is None:  # a silent trial: its clock starts now (see _silent)
                    with contextlib.suppress(UpdateFinishedTrialError):
                        self.record_heartbeat(trial._trial_id)
                elif now - beat > grace:
                    stale.append(trial._trial_id)
            return stale

        def get_heartbeat_interval(self) -> int:
            return interval

        def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
            return stale_callback

    return HeartbeatGrpcStorageProxy(host=host, port=port)


def _own_beat(trial: optuna.trial.FrozenTrial) -> float | None:
    """When the trial's last heartbeat was written; None for a trial without one yet. Optuna's retry copies the
    failed trial's system attributes, so a retry holds its predecessor's last heartbeat until its own worker
    writes one: the heartbeat names its trial."""
    beat = trial.system_attrs.get(attrs.HEARTBEAT)
    return beat[1] if isinstance(beat, list) and beat[0] == trial._trial_id else None


def make_proxy_server(storage: Any, host: str, port: int, *, threads: int) -> grpc.Server:
    """Optuna's storage proxy service for ``storage`` on ``host:port``, not started. A call that fails because the
    database is unreachable answers UNAVAILABLE, which the workers wait out, where Optuna's server answers
    UNKNOWN, which they cannot tell from a bug."""
    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    down_since: list[float] = []  # when the database stopped answering, logged once an outage
    lock = threading.Lock()

    class UnavailableWhileDatabaseIsDown(grpc.ServerInterceptor):
        def intercept_service(self, continuation: Callable, handler_call_details: Any) -> Any:
            handler = continuation(handler_call_details)
            if handler is None or handler.unary_unary is None:
                return handler
            answer = handler.unary_unary

            def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    response = answer(request, context)
                except Exception as error:
                    if not is_connection_error(error):
                        raise
                    reason = connection_error_text(error)
                    with lock:
                        if not down_since:
                            down_since.append(time.monotonic())
                            log.warning("the database is unreachable (%s); workers wait for it", reason)
                    context.abort(grpc.StatusCode.UNAVAILABLE, f"the proxy's database is unreachable: {reason}")
                if down_since:  # read without the lock: the common case costs nothing
                    with lock:
                        if down_since:
                            log.warning("the database answers again after %.0f s", time.monotonic() - down_since.pop())
                return response

            return grpc.unary_unary_rpc_method_handler(unary_unary, request_deserializer=handler.request_deserializer,
                                                       response_serializer=handler.response_serializer)

    server = grpc.server(ThreadPoolExecutor(max_workers=threads), interceptors=[UnavailableWhileDatabaseIsDown()],
                         options=[("grpc.so_reuseport", 0)])  # a second proxy on a taken port fails, not shares it
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return server


def proxied_storage(database: Any) -> Any:
    """The opened ``database`` with Optuna's cache of finished trials, as the proxy serves it. The cache learns of a
    trial when this process creates or reads it, so a trial created through an earlier run of the proxy (before
    it restarted) takes its parameters without the cache."""
    import optuna

    cached: Any = optuna.storages.get_storage(database)
    through_cache = cached.set_trial_param

    def set_trial_param(trial_id: int, name: str, value: float, distribution: Any) -> None:
        try:
            through_cache(trial_id, name, value, distribution)
        except KeyError:  # not in the cache; the database says whether the trial exists
            database.set_trial_param(trial_id, name, value, distribution)

    cached.set_trial_param = set_trial_param
    return cached


def serve_proxy(url: str, *, host: str, port: int, threads: int,
                on_ready: Callable[[], None] | None = None) -> None:
    """Serve the storage at ``url`` (a database; its tables are made if missing) on ``host:port`` until SIGTERM or
    SIGINT; ``on_ready`` is called once it listens."""
    import optuna

    from .._signals import Interrupted, stopping_on_signals
    from ..errors import SettingError
    from ._storage import open_storage

    shown = mask_password(url)
    if url.startswith(("journal:", "grpc://")):
        raise SettingError("storage", shown, "the storage proxy serves a database (PostgreSQL, MySQL or SQLite); "
                           "Optuna's proxy does not serve a journal file, and a proxy does not serve another proxy.",
                           fix="Give the database's URL, e.g. postgresql://USER@HOST/DB.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study created through the proxy
    storage = proxied_storage(open_storage(url))
    try:
        server = make_proxy_server(storage, host, port, threads=threads)
    except (OSError, RuntimeError) as exc:
        from ..errors import StorageError

        raise StorageError(f"storage proxy on {host}:{port}", f"cannot listen there ({exc}).",
                           fix="Choose another --port, or stop what listens on it.") from None
    with stopping_on_signals():
        server.start()
        log.info("storage proxy for %s listening on %s:%d (%d threads); workers use --storage grpc://%s:%d",
                 shown, host, port, threads, host, port)
        try:
            if on_ready is not None:
                on_ready()
            server.wait_for_termination()
        except Interrupted as stop:
            log.info("storage proxy stopping (%s)", stop)
        finally:
            server.stop(grace=5).wait()
