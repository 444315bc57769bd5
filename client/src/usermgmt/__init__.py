"""Async Python client of the usermgmt service.

``UsermgmtClient`` opens one gRPC channel (retrying UNAVAILABLE, with keepalive and default
deadlines) and offers ``.users`` (UserService) and ``.auth`` (AuthService). Failed calls raise
typed exceptions (see ``UsermgmtError``); ``usermgmt.verify`` checks access tokens locally
(extra ``verify``); ``usermgmt.retry_policy`` is the channel's retry service config;
``usermgmt.v1`` holds the generated messages and stubs; ``usermgmt.cli`` is the command.
"""

from usermgmt._auth import AuthClient
from usermgmt._channel import Keepalive, RetryPolicy, open_channel
from usermgmt._client import DEFAULT_TARGET, DEFAULT_TIMEOUT, UsermgmtClient
from usermgmt._errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    EmailNotVerified,
    EmailTaken,
    EtagMismatch,
    FailedPrecondition,
    FieldViolation,
    InternalError,
    InvalidArgument,
    InvalidCode,
    InvalidCredentials,
    InvalidPageToken,
    InvalidRefreshToken,
    NotFound,
    NothingToVerify,
    NotServing,
    PasswordChangeRequired,
    PermissionDenied,
    RateLimited,
    RequestIdReused,
    ResendCooldown,
    ResourceExhausted,
    RetryLater,
    ServerBusy,
    StorageUnavailable,
    Unauthenticated,
    Unavailable,
    UsermgmtError,
    UsernameTaken,
    UserNotFound,
    error_from_status,
)
from usermgmt._fieldmask import (
    UPDATABLE_FIELDS,
    UnknownField,
    update_request_from_user,
    update_user_request,
)
from usermgmt._pager import UserPager
from usermgmt._session import Session, SharedTokens
from usermgmt._users import MAX_IMPORT_ROWS, UsersClient
from usermgmt._version import VERSION

__version__ = VERSION

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT",
    "MAX_IMPORT_ROWS",
    "UPDATABLE_FIELDS",
    "Aborted",
    "AlreadyExists",
    "AuthClient",
    "DeadlineExceeded",
    "EmailNotVerified",
    "EmailTaken",
    "EtagMismatch",
    "FailedPrecondition",
    "FieldViolation",
    "InternalError",
    "InvalidArgument",
    "InvalidCode",
    "InvalidCredentials",
    "InvalidPageToken",
    "InvalidRefreshToken",
    "Keepalive",
    "NotFound",
    "NotServing",
    "NothingToVerify",
    "PasswordChangeRequired",
    "PermissionDenied",
    "RateLimited",
    "RequestIdReused",
    "ResendCooldown",
    "ResourceExhausted",
    "RetryLater",
    "RetryPolicy",
    "ServerBusy",
    "Session",
    "SharedTokens",
    "StorageUnavailable",
    "Unauthenticated",
    "Unavailable",
    "UnknownField",
    "UserNotFound",
    "UserPager",
    "UsermgmtClient",
    "UsermgmtError",
    "UsernameTaken",
    "UsersClient",
    "__version__",
    "error_from_status",
    "open_channel",
    "update_request_from_user",
    "update_user_request",
]
