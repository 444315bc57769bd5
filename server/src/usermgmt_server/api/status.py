"""One table from domain errors to gRPC statuses, with ErrorInfo and BadRequest (AIP-193)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from usermgmt_server.domain import errors

ERROR_DOMAIN = "usermgmt"

# Most specific first: the first matching class wins.
STATUS_BY_ERROR: tuple[tuple[type[errors.UsermgmtError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.UsernameTaken, grpc.StatusCode.ALREADY_EXISTS),
    (errors.EmailTaken, grpc.StatusCode.ALREADY_EXISTS),
    (errors.UserNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.EtagMismatch, grpc.StatusCode.ABORTED),
    (errors.InvalidCredentials, grpc.StatusCode.UNAUTHENTICATED),
    (errors.InvalidRefreshToken, grpc.StatusCode.UNAUTHENTICATED),
    (errors.NotAuthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.EmailNotVerified, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PasswordChangeRequired, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.NothingToVerify, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.RetryLater, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.StorageUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.ServerBusy, grpc.StatusCode.UNAVAILABLE),
)


def status_code_for(error: errors.UsermgmtError) -> grpc.StatusCode:
    """The gRPC status code for a domain error."""
    for error_type, code in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.INTERNAL


def rich_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    violations: list[errors.FieldViolation] | None = None,
    retry_after: float | None = None,
) -> grpc.Status:
    """A gRPC status carrying ErrorInfo and, when given, BadRequest and RetryInfo."""
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN))]
    if retry_after is not None:
        retry_info = error_details_pb2.RetryInfo()
        retry_info.retry_delay.FromNanoseconds(max(1, round(retry_after * 1e9)))
        details.append(_pack(retry_info))
    if violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=violation.field,
                    description=violation.description,
                    reason=violation.reason,
                )
                for violation in violations
            ]
        )
        details.append(_pack(bad_request))
    proto = status_pb2.Status(code=_CODE_NUMBERS[code], message=message, details=details)
    return rpc_status.to_status(proto)


def status_for(error: errors.UsermgmtError) -> grpc.Status:
    """The rich gRPC status for a domain error."""
    violations = error.violations if isinstance(error, errors.InvalidArgument) else None
    retry_after = error.retry_after if isinstance(error, errors.RetryLater) else None
    return rich_status(status_code_for(error), error.message, error.reason, violations, retry_after)


def internal_status() -> grpc.Status:
    """The status for an unexpected server fault: no detail about the fault leaves the server."""
    return rich_status(grpc.StatusCode.INTERNAL, "internal error", "INTERNAL")


def _pack(
    message: error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.RetryInfo,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


_CODE_NUMBERS = {code: getattr(code_pb2, code.name) for code in grpc.StatusCode}
