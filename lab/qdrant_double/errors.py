"""Errors answered as Qdrant would: each carries an HTTP status and a gRPC code."""

from __future__ import annotations

import grpc


class DoubleError(Exception):
    """An error answered as Qdrant would: an HTTP status and a gRPC code."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL
    auth_layer = False
    """Refused by the authentication middleware, before any handler: its REST body is the bare
    text (`HttpResponse::Unauthorized().body(e)` / `Forbidden().body(e)`, src/actix/auth.rs),
    with no content type, not a handler's JSON error shape."""


class Unauthorized(DoubleError):
    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    auth_layer = True


class Forbidden(DoubleError):
    """The authentication layer's refusal (`src/common/auth/mod.rs`), in Qdrant's words."""

    http_status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    auth_layer = True


class AccessDenied(Forbidden):
    """An RBAC refusal, Qdrant's `StorageError::Forbidden`, whose text carries the `Forbidden: `
    prefix (`lib/storage/src/content_manager/errors.rs`); a handler's, so a JSON error body."""

    auth_layer = False

    def __init__(self, description: str) -> None:
        super().__init__(f"Forbidden: {description}")


class BadRequest(DoubleError):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DoubleError):
    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class Conflict(DoubleError):
    http_status = 409
    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class ServiceError(DoubleError):
    """A handler failure, answered as Qdrant's `StorageError::ServiceError`: a 500 (gRPC INTERNAL)
    with the error shape, never a dropped connection."""

    def __init__(self, description: str) -> None:
        super().__init__(f"Service internal error: {description}")


class Unsupported(DoubleError):
    """What Qdrant serves but the double does not build on Qdrant Edge, such as a facet
    count: said plainly rather than imitated."""

    http_status = 501
    grpc_code = grpc.StatusCode.UNIMPLEMENTED
