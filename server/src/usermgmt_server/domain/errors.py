"""The domain's exceptions: a flat family named after facts.

UsermgmtError
├── InvalidArgument          bad input; carries one FieldViolation per problem
│   ├── RequestIdReused      a request id replayed with another payload
│   └── InvalidPageToken     a page token that is malformed, tampered or bound to another filter
├── UsernameTaken            another account holds the username
├── EmailTaken               another account holds the e-mail address
├── UserNotFound             no such account
├── EtagMismatch             the account changed since the etag was read
├── InvalidCredentials       unknown login, wrong password or an account that cannot sign in
├── NotAuthenticated         no valid access token
├── PermissionDenied         the caller may not do this
├── StorageUnavailable       storage unreachable or throttling beyond retries
└── ServerBusy               a bounded resource (the hashing pool) is saturated
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one request field (``field`` uses the request's field path)."""

    field: str
    description: str


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
