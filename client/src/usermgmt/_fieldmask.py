"""Building UpdateUser requests: the new values and the ``update_mask`` naming them (AIP-134)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import field_mask_pb2

from usermgmt.v1 import user_pb2, user_service_pb2

#: Fields UpdateUser may change (``roles`` and ``state``: administrators only).
UPDATABLE_FIELDS = (
    "display_name",
    "email",
    "username",
    "notification_channel",
    "phone_number",
    "roles",
    "state",
)
_OUTPUT_ONLY = frozenset(user_pb2.User.DESCRIPTOR.fields_by_name) - {
    *UPDATABLE_FIELDS,
    "user_id",
}
_ENUM_PREFIXES = {"state": "USER_STATE_", "notification_channel": "NOTIFICATION_CHANNEL_"}


class UnknownField(ValueError):
    """An update names a field that UpdateUser cannot change; raised before any call."""


def update_user_request(
    user_id: str = "me", *, etag: str = "", **fields: Any
) -> user_service_pb2.UpdateUserRequest:
    """An UpdateUser request that sets exactly ``fields`` (and names them in the mask).

    Values may be empty to clear a field (``phone_number=""``). Enum fields take the enum value
    or its name, with or without prefix and in any case (``state="disabled"``,
    ``notification_channel="NOTIFICATION_CHANNEL_SMS"``). ``roles`` takes a list of strings.
    Unknown and output-only field names raise ``UnknownField``; so does an empty update.
    """
    if not fields:
        raise UnknownField(f"nothing to update: name at least one of {', '.join(UPDATABLE_FIELDS)}")
    user = user_pb2.User(user_id=user_id, etag=etag)
    for name, value in fields.items():
        _check_name(name)
        _assign(user, name, value)
    return user_service_pb2.UpdateUserRequest(
        user=user, update_mask=field_mask_pb2.FieldMask(paths=list(fields))
    )


def update_request_from_user(
    user: user_pb2.User, paths: Iterable[str] | None = None
) -> user_service_pb2.UpdateUserRequest:
    """An UpdateUser request from a partial ``User``.

    Without ``paths`` the mask names the updatable fields that are set in ``user`` (non-empty
    in proto3 terms); pass ``paths`` to also clear fields (an empty value named in the mask).
    ``user_id`` (default ``"me"``) and ``etag`` are taken from ``user``.
    """
    if paths is None:
        paths = [
            field.name for field, _ in user.ListFields() if field.name not in ("user_id", "etag")
        ]
    paths = list(paths)
    if not paths:
        raise UnknownField(f"nothing to update: set at least one of {', '.join(UPDATABLE_FIELDS)}")
    for name in paths:
        _check_name(name)
    partial = user_pb2.User()
    partial.CopyFrom(user)
    partial.user_id = user.user_id or "me"
    return user_service_pb2.UpdateUserRequest(
        user=partial, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )


def enum_value(field_name: str, value: int | str) -> int:
    """The number of enum field ``field_name``'s value given as a number or a name."""
    enum = user_pb2.User.DESCRIPTOR.fields_by_name[field_name].enum_type
    prefix = _ENUM_PREFIXES[field_name]
    if isinstance(value, int) and not isinstance(value, bool):
        if value not in enum.values_by_number:
            raise ValueError(f"{field_name}: {value} is not a {enum.name} value")
        return value
    if isinstance(value, str):
        name = value.strip().upper()
        found = enum.values_by_name.get(name) or enum.values_by_name.get(prefix + name)
        if found is not None:
            return found.number
    choices = ", ".join(v.name.removeprefix(prefix).lower() for v in enum.values[1:])
    raise ValueError(f"{field_name}: {value!r} is not one of {choices}")


def _check_name(name: str) -> None:
    if name in UPDATABLE_FIELDS:
        return
    if name in _OUTPUT_ONLY or name == "user_id":
        raise UnknownField(f"cannot update {name!r}: it is set by the server")
    raise UnknownField(
        f"cannot update {name!r}: not a field of User; updatable fields are "
        + ", ".join(UPDATABLE_FIELDS)
    )


def _assign(user: user_pb2.User, name: str, value: Any) -> None:
    if name == "roles":
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError("roles: give a list of role names")
        roles = list(value)
        if not all(isinstance(role, str) for role in roles):
            raise ValueError("roles: every role is a string")
        user.roles.extend(roles)
    elif name in _ENUM_PREFIXES:
        setattr(user, name, enum_value(name, value))
    else:
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, not {type(value).__name__}")
        setattr(user, name, value)
