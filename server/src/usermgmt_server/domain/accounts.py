"""New accounts as every creating flow builds them: normalised keys, version 1, one timestamp."""

from __future__ import annotations

from datetime import datetime

from usermgmt_server.domain.identifiers import identifier_key
from usermgmt_server.domain.model import User, UserState


def new_account(
    *,
    user_id: str,
    now: datetime,
    username: str,
    email: str,
    display_name: str,
    roles: tuple[str, ...],
    password_hash: str,
    email_verified: bool = False,
    state: UserState = UserState.ACTIVE,
) -> User:
    """An account not stored yet, created and last changed ``now``."""
    return User(
        user_id=user_id,
        username=username,
        username_key=identifier_key(username),
        email=email,
        email_key=identifier_key(email) if email else "",
        display_name=display_name,
        state=state,
        email_verified=email_verified,
        roles=roles,
        create_time=now,
        update_time=now,
        version=1,
        password_hash=password_hash,
    )
