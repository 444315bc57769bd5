"""Typed exceptions rebuilt from the server's rich gRPC status (AIP-193).

Every failed call raises a subclass of ``UsermgmtError``; catch a family to react to a kind of
failure, or a leaf to react to one reason::

    UsermgmtError                     code, reason, message, field_violations, retry_after
    ├── InvalidArgument               INVALID_ARGUMENT: bad input, see field_violations
    │   ├── InvalidPageToken          INVALID_PAGE_TOKEN: tampered, or reused with another filter
    │   ├── RequestIdReused           REQUEST_ID_REUSED: request_id replayed with another payload
    │   └── InvalidCode               INVALID_CODE: wrong, expired or used-up code
    ├── Unauthenticated               UNAUTHENTICATED: missing, expired or forged access token
    │   ├── InvalidCredentials        INVALID_CREDENTIALS: unknown login or wrong password
    │   └── InvalidRefreshToken       INVALID_REFRESH_TOKEN: the session ended; sign in again
    ├── PermissionDenied              PERMISSION_DENIED: another account, or admin only
    ├── NotFound                      NOT_FOUND
    │   └── UserNotFound              USER_NOT_FOUND
    ├── AlreadyExists                 ALREADY_EXISTS
    │   ├── UsernameTaken             USERNAME_TAKEN
    │   └── EmailTaken                EMAIL_TAKEN
    ├── Aborted                       ABORTED
    │   └── EtagMismatch              ETAG_MISMATCH: changed since read; read again and retry
    ├── FailedPrecondition            FAILED_PRECONDITION
    │   ├── EmailNotVerified          EMAIL_NOT_VERIFIED
    │   ├── PasswordChangeRequired    PASSWORD_CHANGE_REQUIRED
    │   └── NothingToVerify           NOTHING_TO_VERIFY
    ├── ResourceExhausted             RESOURCE_EXHAUSTED (also: server at its concurrency limit)
    │   └── RetryLater                RETRY_LATER: retry_after says when
    │       ├── RateLimited           RATE_LIMITED
    │       └── ResendCooldown        RESEND_COOLDOWN
    ├── Unavailable                   UNAVAILABLE (also: no connection), after the channel's retries
    │   ├── StorageUnavailable        STORAGE_UNAVAILABLE
    │   ├── ServerBusy                SERVER_BUSY
    │   └── NotServing                NOT_SERVING: the instance is draining or cut off
    ├── DeadlineExceeded              DEADLINE_EXCEEDED: no answer within the call's timeout
    └── InternalError                 INTERNAL, UNKNOWN, DATA_LOSS: a fault on the other side

The class is chosen by the ``google.rpc.ErrorInfo`` reason when the status carries one from the
``usermgmt`` domain, otherwise by the status code; ``code`` and ``reason`` always hold what the
server sent (``reason`` is ``""`` when there was no ErrorInfo, e.g. for transport failures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "usermgmt"
_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one request field, from ``google.rpc.BadRequest``.

    ``reason`` names the broken rule in UPPER_SNAKE when the server gives one
    (``PASSWORD_TOO_SHORT``), so callers can react without parsing ``description``.
    """

    field: str
    description: str
    reason: str = ""

    def __str__(self) -> str:
        text = f"{self.field}: {self.description}"
        return f"{text} ({self.reason})" if self.reason else text


class UsermgmtError(Exception):
    """Base of every error a usermgmt call raises.

    Attributes: ``code`` (``grpc.StatusCode``), ``reason`` (ErrorInfo reason, ``""`` if none),
    ``message`` (the status message), ``field_violations`` (tuple of ``FieldViolation``),
    ``retry_after`` (seconds from RetryInfo, or ``None``).
    """

    #: The status code this class stands for (the default when built without one).
    default_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN
    #: The ErrorInfo reason this class stands for; ``""`` for a family of reasons.
    default_reason: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str | None = None,
        field_violations: Sequence[FieldViolation] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.reason = self.default_reason if reason is None else reason
        self.field_violations = tuple(field_violations)
        self.retry_after = retry_after

    def __str__(self) -> str:
        label = self.reason or self.code.name
        if self.field_violations:
            return f"{label}: " + "; ".join(str(v) for v in self.field_violations)
        text = f"{label}: {self.message}" if self.message else label
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.name}, reason={self.reason!r}, " + (
            f"message={self.message!r})"
        )


class InvalidArgument(UsermgmtError):
    """The request is malformed; nothing was changed. See ``field_violations``."""

    default_code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class InvalidPageToken(InvalidArgument):
    """The page token is malformed, tampered with, or was issued for another filter."""

    default_reason = "INVALID_PAGE_TOKEN"


class RequestIdReused(InvalidArgument):
    """The request id was already used with a different payload."""

    default_reason = "REQUEST_ID_REUSED"


class InvalidCode(InvalidArgument):
    """The verification or reset code is wrong, expired, used or out of attempts."""

    default_reason = "INVALID_CODE"


class Unauthenticated(UsermgmtError):
    """The call needs a valid access token (missing, malformed, expired, revoked or forged)."""

    default_code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class InvalidCredentials(Unauthenticated):
    """Unknown login, wrong password, or an account that cannot sign in (deliberately vague)."""

    default_reason = "INVALID_CREDENTIALS"


class InvalidRefreshToken(Unauthenticated):
    """The refresh token is unknown, expired, reused or revoked: the session has ended."""

    default_reason = "INVALID_REFRESH_TOKEN"


class PermissionDenied(UsermgmtError):
    """The caller is signed in but may not do this."""

    default_code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class NotFound(UsermgmtError):
    """The named resource does not exist."""

    default_code = grpc.StatusCode.NOT_FOUND


class UserNotFound(NotFound):
    """No account has this id."""

    default_reason = "USER_NOT_FOUND"


class AlreadyExists(UsermgmtError):
    """A unique value is held by another account."""

    default_code = grpc.StatusCode.ALREADY_EXISTS


class UsernameTaken(AlreadyExists):
    """Another account holds the (normalised) username."""

    default_reason = "USERNAME_TAKEN"


class EmailTaken(AlreadyExists):
    """Another account holds the (normalised) e-mail address."""

    default_reason = "EMAIL_TAKEN"


class Aborted(UsermgmtError):
    """A concurrent change won; read again and retry."""

    default_code = grpc.StatusCode.ABORTED


class EtagMismatch(Aborted):
    """The account changed since its etag was read."""

    default_reason = "ETAG_MISMATCH"


class FailedPrecondition(UsermgmtError):
    """The account is not in a state that allows this call."""

    default_code = grpc.StatusCode.FAILED_PRECONDITION


class EmailNotVerified(FailedPrecondition):
    """The password is right but the e-mail address is not verified yet."""

    default_reason = "EMAIL_NOT_VERIFIED"


class PasswordChangeRequired(FailedPrecondition):
    """An administrator requires a new password before anything else."""

    default_reason = "PASSWORD_CHANGE_REQUIRED"


class NothingToVerify(FailedPrecondition):
    """No address of the account awaits verification."""

    default_reason = "NOTHING_TO_VERIFY"


class ResourceExhausted(UsermgmtError):
    """A limit was reached (the server's, or a per-client one)."""

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class RetryLater(ResourceExhausted):
    """A limit was reached; ``retry_after`` (seconds) says when the call may succeed."""

    default_reason = "RETRY_LATER"


class RateLimited(RetryLater):
    """Too many calls from this client address."""

    default_reason = "RATE_LIMITED"


class ResendCooldown(RetryLater):
    """A code was sent to this account moments ago."""

    default_reason = "RESEND_COOLDOWN"


class Unavailable(UsermgmtError):
    """The service could not be reached or could not serve the call, even after the channel's
    retries; safe to try again later."""

    default_code = grpc.StatusCode.UNAVAILABLE


class StorageUnavailable(Unavailable):
    """The server could not reach its storage."""

    default_reason = "STORAGE_UNAVAILABLE"


class ServerBusy(Unavailable):
    """The server is saturated (its password-hashing pool is full)."""

    default_reason = "SERVER_BUSY"


class NotServing(Unavailable):
    """The instance is draining or has lost its storage (ProbeService/Ready)."""

    default_reason = "NOT_SERVING"


class DeadlineExceeded(UsermgmtError):
    """No answer arrived within the call's timeout; the call may or may not have taken effect."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class InternalError(UsermgmtError):
    """A fault on the server (or in a proxy); the server reveals no detail of it."""

    default_code = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"


_LEAVES: tuple[type[UsermgmtError], ...] = (
    InvalidArgument,
    InvalidPageToken,
    RequestIdReused,
    InvalidCode,
    Unauthenticated,
    InvalidCredentials,
    InvalidRefreshToken,
    PermissionDenied,
    UserNotFound,
    UsernameTaken,
    EmailTaken,
    EtagMismatch,
    EmailNotVerified,
    PasswordChangeRequired,
    NothingToVerify,
    RetryLater,
    RateLimited,
    ResendCooldown,
    StorageUnavailable,
    ServerBusy,
    NotServing,
    InternalError,
)

#: ErrorInfo reason -> exception class.
ERROR_BY_REASON: dict[str, type[UsermgmtError]] = {cls.default_reason: cls for cls in _LEAVES}

#: Status code -> exception class, for statuses without a known reason.
ERROR_BY_CODE: dict[grpc.StatusCode, type[UsermgmtError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
}


def error_from_status(
    code: grpc.StatusCode,
    message: str,
    trailing_metadata: Sequence[tuple[str, Any]] | None = None,
) -> UsermgmtError:
    """The typed exception for a failed call's status code, message and trailing metadata.

    ``grpc-status-details-bin`` in the metadata carries ``google.rpc.Status``; its ErrorInfo
    (domain ``usermgmt``) picks the class, BadRequest fills ``field_violations`` and RetryInfo
    ``retry_after``.
    """
    reason = ""
    violations: list[FieldViolation] = []
    retry_after: float | None = None
    status = _rich_status(trailing_metadata)
    if status is not None:
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                if info.domain == ERROR_DOMAIN:
                    reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations += [
                    FieldViolation(v.field, v.description, v.reason)
                    for v in bad_request.field_violations
                ]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    error_type = ERROR_BY_REASON.get(reason)
    if error_type is None or error_type.default_code != code:
        error_type = ERROR_BY_CODE.get(code, UsermgmtError)
    return error_type(
        message,
        code=code,
        reason=reason,
        field_violations=violations,
        retry_after=retry_after,
    )


def error_from_rpc_error(error: grpc.aio.AioRpcError) -> UsermgmtError:
    """The typed exception for a failed ``grpc.aio`` call."""
    typed = error_from_status(error.code(), error.details() or "", error.trailing_metadata())
    typed.__cause__ = error
    return typed


def _rich_status(trailing_metadata: Sequence[tuple[str, Any]] | None) -> status_pb2.Status | None:
    for key, value in trailing_metadata or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:  # a proxy's garbage must not hide the status code
                return None
    return None
