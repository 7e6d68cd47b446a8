"""gRPC authentication and authorization (an interceptor judging every method of access_table.py),
and the mapping of a servicer's errors to statuses (``_rpc``)."""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote

import grpc

from lab.qdrant_double.access import Access, Authenticator, Need, require_audited
from lab.qdrant_double.access_table import GRPC_METHODS
from lab.qdrant_double.audit import AuditLog, Caller
from lab.qdrant_double.errors import DoubleError, ServiceError

_GRPC_NEEDS = dict(GRPC_METHODS)
_GRPC_PUBLIC_METHODS = frozenset(name for name, need in GRPC_METHODS if need is Need.PUBLIC)
_CURRENT_ACCESS: contextvars.ContextVar[Access] = contextvars.ContextVar("qdrant_double_access")


def _metadata_value(metadata: Sequence[tuple[str, Any]], key: str) -> str | None:
    for name, value in metadata:
        if name == key and isinstance(value, str):
            return value
    return None


def _peer_ip(context: Any) -> str | None:
    """The TCP peer's IP from gRPC's ``ipv4:1.2.3.4:5`` / ``ipv6:[::1]:5`` (tonic's
    ``TcpConnectInfo::remote_addr().ip()``)."""
    found = re.fullmatch(r"ipv4:(.+):\d+|ipv6:\[(.+)\]:\d+", unquote(context.peer() or ""))
    return None if found is None else found.group(1) or found.group(2)


_CallerOf = Callable[[Any], Caller]


def _rejecting_handler(error: DoubleError, caller_of: _CallerOf, audit: AuditLog) -> Any:
    def reject(request: bytes, context: Any) -> bytes:
        audit.denied_auth(caller_of(context), error)
        context.abort(error.grpc_code, str(error))
        raise AssertionError("context.abort returned")

    return grpc.unary_unary_rpc_method_handler(reject)


def _bind_access(
    behavior: Callable[[Any, Any], Any],
    access: Access,
    need: Need | None,
    caller_of: _CallerOf,
    audit: AuditLog,
    method: str,
) -> Callable[[Any, Any], Any]:
    """``behavior`` run with ``access`` once it meets the method's ``need`` on the collection its
    request names (StorageRead's too: grpc_storage_read.py reads its name)."""

    def bound(request: Any, context: Any) -> Any:
        if need is not None:
            collection = getattr(request, "collection_name", None)
            try:
                require_audited(access, need, collection, audit, caller_of(context), method)
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

    def __init__(self, auth: Authenticator, audit: AuditLog) -> None:
        self._auth = auth
        self._audit = audit

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if details.method in _GRPC_PUBLIC_METHODS:
            return continuation(details)
        metadata = details.invocation_metadata or ()
        header = functools.partial(_metadata_value, metadata)

        # The peer is known only to the call's context: tonic reads the same headers as actix
        # (src/tonic/auth.rs), and the api is the method's path.
        def caller_of(context: Any) -> Caller:
            return self._audit.caller(header, _peer_ip(context), details.method)

        try:
            access, auth_type, subject = self._auth.identify(header)
        except DoubleError as error:
            return _rejecting_handler(error, caller_of, self._audit)
        handler = continuation(details)
        # Every handler here is unary-unary; any other kind would find no Access and fail.
        if handler is None or handler.unary_unary is None:
            return handler

        def authenticated(context: Any) -> Caller:
            return caller_of(context).authenticated(auth_type, subject)

        need = _GRPC_NEEDS.get(details.method)
        bound = _bind_access(
            handler.unary_unary,
            access,
            need,
            authenticated,
            self._audit,
            _method_name(details.method),
        )
        return handler._replace(unary_unary=bound)


def _method_name(path: str) -> str:
    """``/qdrant.Points/SearchGroups`` -> ``search_groups``: the audit line's method."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", path.rsplit("/", 1)[-1]).lower()


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
