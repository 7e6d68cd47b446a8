"""gRPC authentication and authorization (an interceptor judging every method of access_table.py),
and the mapping of a servicer's errors to statuses (``_rpc``)."""

from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable, Optional, Sequence, Tuple

import grpc

from lab.qdrant_double.access import Access, Authenticator, Need
from lab.qdrant_double.access_table import GRPC_METHODS
from lab.qdrant_double.errors import DoubleError, ServiceError

_GRPC_NEEDS = dict(GRPC_METHODS)
_GRPC_PUBLIC_METHODS = frozenset(name for name, need in GRPC_METHODS if need is Need.PUBLIC)
_CURRENT_ACCESS: contextvars.ContextVar[Access] = contextvars.ContextVar("qdrant_double_access")


def _metadata_value(metadata: Sequence[Tuple[str, Any]], key: str) -> Optional[str]:
    for name, value in metadata:
        if name == key and isinstance(value, str):
            return value
    return None


def _rejecting_handler(error: DoubleError) -> Any:
    def reject(request: bytes, context: Any) -> bytes:
        context.abort(error.grpc_code, str(error))
        raise AssertionError("context.abort returned")

    return grpc.unary_unary_rpc_method_handler(reject)


def _bind_access(
    behavior: Callable[[Any, Any], Any], access: Access, need: Optional[Need]
) -> Callable[[Any, Any], Any]:
    """``behavior`` run with ``access`` once it meets the method's ``need`` on the collection its
    request names (StorageRead's too: grpc_storage_read.py reads its name)."""

    def bound(request: Any, context: Any) -> Any:
        if need is not None:
            try:
                access.require(need, getattr(request, "collection_name", None))
            except DoubleError as error:
                context.abort(error.grpc_code, str(error))
        token = _CURRENT_ACCESS.set(access)
        try:
            return behavior(request, context)
        finally:
            _CURRENT_ACCESS.reset(token)

    return bound


class _AuthInterceptor(grpc.ServerInterceptor):
    """Authenticates every call before routing, as Qdrant's tonic layer does: an unknown
    method without credentials is UNAUTHENTICATED, not UNIMPLEMENTED."""

    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if details.method in _GRPC_PUBLIC_METHODS:
            return continuation(details)
        metadata = details.invocation_metadata or ()
        try:
            access = self._auth.authenticate(functools.partial(_metadata_value, metadata))
        except DoubleError as error:
            return _rejecting_handler(error)
        handler = continuation(details)
        # Every handler here is unary-unary; any other kind would find no Access and fail.
        if handler is None or handler.unary_unary is None:
            return handler
        need = _GRPC_NEEDS.get(details.method)
        return handler._replace(unary_unary=_bind_access(handler.unary_unary, access, need))


def _rpc(method: Callable[..., Any]) -> Callable[..., Any]:
    """A servicer method, authorized by the interceptor, with its errors mapped to statuses (a
    failure is Qdrant's INTERNAL, not UNKNOWN). It receives ``(self, request, access)``."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return method(self, request, _CURRENT_ACCESS.get())
        except DoubleError as error:
            context.abort(error.grpc_code, str(error))
        except Exception as error:
            context.abort(ServiceError.grpc_code, str(ServiceError(str(error))))

    return wrapper
