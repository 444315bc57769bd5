"""Domain errors map to one gRPC status each, with ErrorInfo and BadRequest details."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from usermgmt_server.api.status import internal_status, status_code_for, status_for
from usermgmt_server.domain import errors

EXPECTED = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.RequestIdReused: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidPageToken: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UsernameTaken: grpc.StatusCode.ALREADY_EXISTS,
    errors.EmailTaken: grpc.StatusCode.ALREADY_EXISTS,
    errors.UserNotFound: grpc.StatusCode.NOT_FOUND,
    errors.EtagMismatch: grpc.StatusCode.ABORTED,
    errors.InvalidCredentials: grpc.StatusCode.UNAUTHENTICATED,
    errors.NotAuthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ServerBusy: grpc.StatusCode.UNAVAILABLE,
    errors.InvalidCode: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidRefreshToken: grpc.StatusCode.UNAUTHENTICATED,
    errors.EmailNotVerified: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PasswordChangeRequired: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NothingToVerify: grpc.StatusCode.FAILED_PRECONDITION,
    errors.RetryLater: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.ResendCooldown: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def _instance(error_type: type[errors.UsermgmtError]) -> errors.UsermgmtError:
    if error_type is errors.InvalidArgument:
        return errors.InvalidArgument([errors.FieldViolation("email", "is required")])
    if error_type is errors.InvalidPageToken:
        return errors.InvalidPageToken("was altered")
    if error_type is errors.RetryLater:
        return errors.RetryLater("wait", 1.5)
    if error_type in (errors.ResendCooldown, errors.RateLimited):
        return error_type(1.5)  # type: ignore[call-arg]
    return error_type()  # type: ignore[call-arg]


def _all_error_types() -> set[type[errors.UsermgmtError]]:
    found: set[type[errors.UsermgmtError]] = set()
    pending = [errors.UsermgmtError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            found.add(subclass)
            pending.append(subclass)
    return found


def test_every_domain_error_has_a_status() -> None:
    assert _all_error_types() == set(EXPECTED)


@pytest.mark.parametrize(("error_type", "code"), EXPECTED.items())
def test_status_carries_error_info(
    error_type: type[errors.UsermgmtError], code: grpc.StatusCode
) -> None:
    error = _instance(error_type)
    assert status_code_for(error) == code
    status = status_for(error)
    assert status.code == code
    (value,) = [v for k, v in status.trailing_metadata if k == "grpc-status-details-bin"]
    decoded = status_pb2.Status.FromString(value)
    info = error_details_pb2.ErrorInfo()
    assert decoded.details[0].Unpack(info)
    assert (info.reason, info.domain) == (error.reason, "usermgmt")
    if isinstance(error, errors.InvalidArgument):
        bad_request = error_details_pb2.BadRequest()
        assert decoded.details[1].Unpack(bad_request)
        assert [v.field for v in bad_request.field_violations] == [
            v.field for v in error.violations
        ]


def test_retry_later_carries_retry_info() -> None:
    status = status_for(errors.RateLimited(2.5))
    (value,) = [v for k, v in status.trailing_metadata if k == "grpc-status-details-bin"]
    retry = error_details_pb2.RetryInfo()
    assert status_pb2.Status.FromString(value).details[1].Unpack(retry)
    assert retry.retry_delay.ToNanoseconds() == 2_500_000_000


def test_internal_status_reveals_nothing() -> None:
    status = internal_status()
    assert status.code == grpc.StatusCode.INTERNAL
    assert status.details == "internal error"


def test_field_violation_reason_reaches_bad_request() -> None:
    error = errors.InvalidArgument(
        [
            errors.FieldViolation(
                "password", "must be at least 15 characters", "PASSWORD_TOO_SHORT"
            ),
            errors.FieldViolation("email", "is required"),
        ]
    )
    status = status_for(error)
    (value,) = [v for k, v in status.trailing_metadata if k == "grpc-status-details-bin"]
    bad_request = error_details_pb2.BadRequest()
    assert status_pb2.Status.FromString(value).details[1].Unpack(bad_request)
    assert [(v.field, v.description, v.reason) for v in bad_request.field_violations] == [
        ("password", "must be at least 15 characters", "PASSWORD_TOO_SHORT"),
        ("email", "is required", ""),
    ]


def test_field_violation_keeps_positional_construction() -> None:
    violation = errors.FieldViolation("email", "is required")
    assert (violation.field, violation.description, violation.reason) == (
        "email",
        "is required",
        "",
    )
    with pytest.raises(AttributeError):
        violation.reason = "X"  # type: ignore[misc]
