"""The authenticated caller of the RPC being served, set by the authorization interceptor."""

from __future__ import annotations

from contextvars import ContextVar

from usermgmt_server.domain.errors import NotAuthenticated
from usermgmt_server.domain.model import Principal

_current: ContextVar[Principal | None] = ContextVar("usermgmt_principal", default=None)


def current_principal() -> Principal:
    """The caller of the current RPC; raises ``NotAuthenticated`` for anonymous calls."""
    principal = _current.get()
    if principal is None:
        raise NotAuthenticated()
    return principal


def optional_principal() -> Principal | None:
    """The caller of the current RPC, or ``None`` when it sent no token."""
    return _current.get()


def bind_principal(principal: Principal | None) -> None:
    """Make ``principal`` the caller for the rest of the current task."""
    _current.set(principal)
