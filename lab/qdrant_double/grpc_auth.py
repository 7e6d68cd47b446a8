"""gRPC authentication (an interceptor) and per-method authorization (``_rpc``)."""

from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable, Optional, Sequence, Tuple

import grpc

from lab.qdrant_double.access import Access, Authenticator, Need
from lab.qdrant_double.errors import DoubleError

_GRPC_PUBLIC_METHODS = frozenset({"/qdrant.Qdrant/HealthCheck", "/grpc.health.v1.Health/Check"})
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


def _bind_access(behavior: Callable[[Any, Any], Any], access: Access) -> Callable[[Any, Any], Any]:
    def bound(request: Any, context: Any) -> Any:
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
        return handler._replace(unary_unary=_bind_access(handler.unary_unary, access))


def _rpc(need: Need) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Authorize a servicer method against the caller's Access and map errors to statuses.
    The method receives ``(self, request, access)``."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: Any) -> Any:
            try:
                access = _CURRENT_ACCESS.get()
                access.require(need, getattr(request, "collection_name", None) or None)
                return method(self, request, access)
            except DoubleError as error:
                context.abort(error.grpc_code, str(error))

        return wrapper

    return decorate
