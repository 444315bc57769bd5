"""Who may call which RPC: one table, enforced by the authorization interceptor."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OWN_SERVICE_PREFIX = "/usermgmt."


class Access(enum.Enum):
    """Who may call an RPC."""

    PUBLIC = "public"
    AUTHENTICATED = "any signed-in user, acting on itself"
    SELF_OR_ADMIN = "self or admin"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Rule:
    """The access level of one RPC, where a SELF_OR_ADMIN request names its target, and the
    per-client-address rate-limit group it counts against (None: not limited)."""

    access: Access
    target: Callable[[Any], str] | None = None
    rate_group: str | None = None


SIGN_IN, REGISTRATION, CODES = "sign-in", "registration", "codes"


_USER = "/usermgmt.v1.UserService/"
_AUTH = "/usermgmt.v1.AuthService/"

# PUBLIC methods still verify a token when one is sent (some answers differ for administrators).
RULES: dict[str, Rule] = {
    _AUTH + "Authenticate": Rule(Access.PUBLIC, rate_group=SIGN_IN),
    _AUTH + "RefreshToken": Rule(Access.PUBLIC),
    _AUTH + "Logout": Rule(Access.PUBLIC),
    _AUTH + "GetJwks": Rule(Access.PUBLIC),
    _AUTH + "RevokeSessions": Rule(Access.SELF_OR_ADMIN, lambda r: r.user_id),
    "/usermgmt.v1.ProbeService/Ready": Rule(Access.PUBLIC),
    _USER + "Register": Rule(Access.PUBLIC, rate_group=REGISTRATION),
    _USER + "GetUser": Rule(Access.SELF_OR_ADMIN, lambda r: r.user_id),
    _USER + "UpdateUser": Rule(Access.SELF_OR_ADMIN, lambda r: r.user.user_id),
    _USER + "DeleteUser": Rule(Access.SELF_OR_ADMIN, lambda r: r.user_id),
    _USER + "ListUsers": Rule(Access.ADMIN),
    _USER + "VerifyEmail": Rule(Access.PUBLIC, rate_group=CODES),
    _USER + "ResendVerificationCode": Rule(Access.PUBLIC, rate_group=CODES),
    _USER + "ChangePassword": Rule(Access.AUTHENTICATED),
    _USER + "RequestPasswordReset": Rule(Access.PUBLIC, rate_group=CODES),
    _USER + "ResetPassword": Rule(Access.PUBLIC, rate_group=CODES),
    _USER + "DisableUser": Rule(Access.ADMIN),
    _USER + "EnableUser": Rule(Access.ADMIN),
    _USER + "UnlockUser": Rule(Access.ADMIN),
    _USER + "SetPassword": Rule(Access.ADMIN),
    _USER + "ImportUsers": Rule(Access.ADMIN),
}

# While a password change is required, a session may only do these.
ALLOWED_DURING_PASSWORD_CHANGE = frozenset(
    {
        _USER + "ChangePassword",
        _USER + "GetUser",
        _AUTH + "Logout",
        _AUTH + "RefreshToken",
        _AUTH + "GetJwks",
        "/usermgmt.v1.ProbeService/Ready",
    }
)

# Standard infrastructure services (health checking, reflection) are open to every caller.
INFRASTRUCTURE_RULE = Rule(Access.PUBLIC)


def rule_for(method: str) -> Rule | None:
    """The rule of a full method name; ``None`` for an RPC of ours missing from the table."""
    if method in RULES:
        return RULES[method]
    if method.startswith(OWN_SERVICE_PREFIX):
        return None
    return INFRASTRUCTURE_RULE
