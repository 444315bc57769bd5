"""Finding accounts the way every flow does: by login, by id, or "me"."""

from __future__ import annotations

from usermgmt_server.domain.errors import PermissionDenied, UserNotFound
from usermgmt_server.domain.identifiers import identifier_key
from usermgmt_server.domain.model import Principal, User
from usermgmt_server.domain.ports import UserRepository
from usermgmt_server.domain.validation import check_user_id, raise_if_any

ME = "me"


async def find_by_login(users: UserRepository, login: str) -> User | None:
    """The account whose username or e-mail address is ``login`` (usernames have no "@")."""
    key = identifier_key(login)
    if "@" in key:
        return await users.find_by_email(key)
    return await users.find_by_username(key)


async def load_visible(
    users: UserRepository, actor: Principal, user_id: str, field: str = "user_id"
) -> User:
    """The account ``user_id`` ("me" = the caller) if the caller is it or an administrator."""
    target = actor.user_id if user_id == ME else user_id
    raise_if_any(check_user_id(target, field))
    if target != actor.user_id and not actor.is_admin:
        raise PermissionDenied("only administrators may access other users")
    user = await users.get(target)
    if user is None:
        raise UserNotFound()
    return user


async def load_for_admin(
    users: UserRepository, actor: Principal, user_id: str, field: str = "user_id"
) -> User:
    """The account ``user_id`` for an administrative action."""
    if not actor.is_admin:
        raise PermissionDenied("administrators only")
    return await load_visible(users, actor, user_id, field)
