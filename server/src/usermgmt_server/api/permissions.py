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
    SELF_OR_ADMIN = "self or admin"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Rule:
    """The access level of one RPC and, for SELF_OR_ADMIN, where the request names its target."""

    access: Access
    target: Callable[[Any], str] | None = None


RULES: dict[str, Rule] = {
    "/usermgmt.v1.AuthService/Authenticate": Rule(Access.PUBLIC),
    "/usermgmt.v1.ProbeService/Ready": Rule(Access.PUBLIC),
    "/usermgmt.v1.UserService/Register": Rule(Access.PUBLIC),
    "/usermgmt.v1.UserService/GetUser": Rule(Access.SELF_OR_ADMIN, lambda r: r.user_id),
    "/usermgmt.v1.UserService/UpdateUser": Rule(Access.SELF_OR_ADMIN, lambda r: r.user.user_id),
    "/usermgmt.v1.UserService/DeleteUser": Rule(Access.SELF_OR_ADMIN, lambda r: r.user_id),
    "/usermgmt.v1.UserService/ListUsers": Rule(Access.ADMIN),
}

# Standard infrastructure services (health checking, reflection) are open to every caller.
INFRASTRUCTURE_RULE = Rule(Access.PUBLIC)


def rule_for(method: str) -> Rule | None:
    """The rule of a full method name; ``None`` for an RPC of ours missing from the table."""
    if method in RULES:
        return RULES[method]
    if method.startswith(OWN_SERVICE_PREFIX):
        return None
    return INFRASTRUCTURE_RULE
