"""QdrantDouble: starts and stops the REST and gRPC listeners around one store."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from lab.qdrant_double.access import Authenticator
from lab.qdrant_double.audit import AuditLog
from lab.qdrant_double.config import DoubleConfig
from lab.qdrant_double.grpc_api import _build_grpc_server, _grpc_address
from lab.qdrant_double.rest import _RestServer
from lab.qdrant_double.store import Store


class QdrantDouble:
    """A running double: ``with QdrantDouble(config) as double: ...``.

    Ports 0 pick free ephemeral ports; read the real ones from ``rest_port`` and
    ``grpc_port`` after start(). ``store`` can be used to seed or inspect state while running;
    the data stays in ``config.storage_path`` for the next double started there.
    """

    def __init__(self, config: DoubleConfig) -> None:
        self.config = config
        self._store: Store | None = None
        self._rest: _RestServer | None = None
        self._rest_thread: threading.Thread | None = None
        self._grpc: Any = None
        self._grpc_executor: ThreadPoolExecutor | None = None
        self.rest_port = 0
        self.grpc_port = 0

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the double is not running")
        return self._store

    @property
    def rest_url(self) -> str:
        return f"http://{_grpc_address(self.config.rest_host, self.rest_port)}"

    @property
    def grpc_target(self) -> str:
        return _grpc_address(self.config.grpc_host, self.grpc_port)

    def start(self) -> QdrantDouble:
        if self._rest is not None:
            raise RuntimeError("already started")
        with ExitStack() as undo:  # unwound only if a step fails
            store = Store(self.config.storage_path, snapshots_path=self.config.snapshots_path)
            undo.callback(store.close)
            auth = Authenticator(self.config, store)
            audit = AuditLog(self.config.audit)
            executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="qdrant-double-grpc")
            undo.callback(executor.shutdown)
            rest = _RestServer(self.config, store, auth, audit)
            undo.callback(rest.server_close)
            server, grpc_port = _build_grpc_server(self.config, store, auth, audit, executor)
            undo.pop_all()
        server.start()
        # A short poll interval keeps stop() fast; shutdown() waits up to one interval.
        thread = threading.Thread(
            target=rest.serve_forever, kwargs={"poll_interval": 0.02}, name="qdrant-double-rest"
        )
        thread.start()
        self._store, self._rest, self._rest_thread = store, rest, thread
        self._grpc, self._grpc_executor = server, executor
        self.rest_port, self.grpc_port = rest.server_port, grpc_port
        return self

    def stop(self) -> None:
        """Stop both listeners, end open connections and join all threads. Idempotent."""
        if self._rest is None:
            return
        self._grpc.stop(grace=None).wait()
        if self._grpc_executor is not None:
            self._grpc_executor.shutdown(wait=True)
        self._rest.shutdown()
        self._rest.close_connections()
        self._rest.server_close()  # joins the handler threads
        if self._rest_thread is not None:
            self._rest_thread.join()
        self.store.close()  # after every request has ended: it releases the storage directory
        self._rest = self._rest_thread = self._grpc = self._grpc_executor = self._store = None

    def __enter__(self) -> QdrantDouble:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
