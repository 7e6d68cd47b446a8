"""Errors answered as Qdrant would: each carries an HTTP status and a gRPC code."""

from __future__ import annotations

import grpc


class DoubleError(Exception):
    """An error answered as Qdrant would: an HTTP status and a gRPC code."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL


class Unauthorized(DoubleError):
    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class Forbidden(DoubleError):
    http_status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class BadRequest(DoubleError):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DoubleError):
    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class Conflict(DoubleError):
    http_status = 409
    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class Unsupported(DoubleError):
    """What Qdrant serves but the double's engine (qdrant-client's local mode) cannot, such as
    snapshots: said plainly rather than imitated."""

    http_status = 501
    grpc_code = grpc.StatusCode.UNIMPLEMENTED
