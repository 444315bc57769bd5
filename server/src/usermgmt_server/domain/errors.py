"""The domain's exceptions: a flat family named after facts.

UsermgmtError
├── InvalidArgument          bad input; carries one FieldViolation per problem
│   ├── RequestIdReused      a request id replayed with another payload
│   ├── InvalidPageToken     a page token that is malformed, tampered or bound to another filter
│   └── InvalidCode          a verification or reset code that is wrong, expired or used up
├── UsernameTaken            another account holds the username
├── EmailTaken               another account holds the e-mail address
├── UserNotFound             no such account
├── EtagMismatch             the account changed since the etag was read
├── InvalidCredentials       unknown login, wrong password or an account that cannot sign in
├── InvalidRefreshToken      a refresh token that is unknown, expired, reused or revoked
├── NotAuthenticated         no valid access token
├── PermissionDenied         the caller may not do this
├── EmailNotVerified         right password, but the e-mail address is not verified yet
├── PasswordChangeRequired   the session may only change the password
├── NothingToVerify          no address of the account awaits verification
├── RetryLater               a limit was reached; ``retry_after`` says when to try again
│   ├── ResendCooldown       a code was sent to this account moments ago
│   └── RateLimited          too many calls from this client address
├── StorageUnavailable       storage unreachable or throttling beyond retries
└── ServerBusy               a bounded resource (the hashing pool) is saturated
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one request field (``field`` uses the request's field path).

    ``reason`` optionally names the broken rule in UPPER_SNAKE (``PASSWORD_TOO_SHORT``) so that
    clients can react to it without parsing ``description``.
    """

    field: str
    description: str
    reason: str = ""


class UsermgmtError(Exception):
    """Base of every error the domain raises on purpose."""

    reason = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(UsermgmtError):
    """The request is malformed; nothing was changed."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], message: str | None = None) -> None:
        summary = message or "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(summary)
        self.violations = violations


class RequestIdReused(InvalidArgument):
    """A request id was reused with a different payload."""

    reason = "REQUEST_ID_REUSED"

    def __init__(self) -> None:
        super().__init__(
            [FieldViolation("request_id", "was already used with a different payload")]
        )


class InvalidPageToken(InvalidArgument):
    """The page token is malformed, tampered with, or belongs to another filter."""

    reason = "INVALID_PAGE_TOKEN"

    def __init__(self, description: str) -> None:
        super().__init__([FieldViolation("page_token", description)])


class UsernameTaken(UsermgmtError):
    """Another account already holds the username."""

    reason = "USERNAME_TAKEN"

    def __init__(self) -> None:
        super().__init__("the username is already taken")


class EmailTaken(UsermgmtError):
    """Another account already holds the e-mail address."""

    reason = "EMAIL_TAKEN"

    def __init__(self) -> None:
        super().__init__("the e-mail address is already taken")


class UserNotFound(UsermgmtError):
    """No account has the requested id."""

    reason = "USER_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("user not found")


class EtagMismatch(UsermgmtError):
    """The account changed after the caller read it."""

    reason = "ETAG_MISMATCH"

    def __init__(self) -> None:
        super().__init__("the user was modified concurrently; read it again and retry")


class InvalidCredentials(UsermgmtError):
    """The login and password do not open an active account (deliberately vague)."""

    reason = "INVALID_CREDENTIALS"

    def __init__(self) -> None:
        super().__init__("invalid login or password")


class NotAuthenticated(UsermgmtError):
    """The call needs a valid access token."""

    reason = "UNAUTHENTICATED"

    def __init__(self, message: str = "a valid access token is required") -> None:
        super().__init__(message)


class PermissionDenied(UsermgmtError):
    """The caller is authenticated but not allowed to do this."""

    reason = "PERMISSION_DENIED"

    def __init__(self, message: str = "permission denied") -> None:
        super().__init__(message)


class StorageUnavailable(UsermgmtError):
    """Storage could not be reached, or kept throttling after retries."""

    reason = "STORAGE_UNAVAILABLE"

    def __init__(self, message: str = "storage is temporarily unavailable") -> None:
        super().__init__(message)


class ServerBusy(UsermgmtError):
    """A bounded resource is saturated; the caller should retry with back-off."""

    reason = "SERVER_BUSY"

    def __init__(self, message: str = "the server is busy; retry later") -> None:
        super().__init__(message)


class InvalidCode(InvalidArgument):
    """The code is wrong, expired, already used or out of attempts (deliberately vague)."""

    reason = "INVALID_CODE"

    def __init__(self) -> None:
        super().__init__([FieldViolation("code", "is invalid or has expired")])


class InvalidRefreshToken(UsermgmtError):
    """The refresh token cannot renew a session."""

    reason = "INVALID_REFRESH_TOKEN"

    def __init__(self) -> None:
        super().__init__("the refresh token is invalid, expired or revoked")


class EmailNotVerified(UsermgmtError):
    """The password is right but the account's e-mail address is not verified yet."""

    reason = "EMAIL_NOT_VERIFIED"

    def __init__(self) -> None:
        super().__init__("the e-mail address is not verified yet; use the code sent to it")


class PasswordChangeRequired(UsermgmtError):
    """An administrator requires a new password before anything else."""

    reason = "PASSWORD_CHANGE_REQUIRED"

    def __init__(self) -> None:
        super().__init__("the password must be changed first (UserService.ChangePassword)")


class NothingToVerify(UsermgmtError):
    """The account has no e-mail address awaiting verification."""

    reason = "NOTHING_TO_VERIFY"

    def __init__(self) -> None:
        super().__init__("the account has no e-mail address awaiting verification")


class RetryLater(UsermgmtError):
    """A limit was reached; ``retry_after`` (seconds) says when the call may succeed."""

    reason = "RETRY_LATER"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ResendCooldown(RetryLater):
    """A code was sent to this account moments ago."""

    reason = "RESEND_COOLDOWN"

    def __init__(self, retry_after: float) -> None:
        super().__init__("a code was sent moments ago; wait before asking again", retry_after)


class RateLimited(RetryLater):
    """Too many calls from this client address."""

    reason = "RATE_LIMITED"

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many requests from this address; slow down", retry_after)
