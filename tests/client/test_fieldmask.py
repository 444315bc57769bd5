"""UpdateUser requests built from keyword arguments or a partial User: the mask names exactly
the changed fields, and names UpdateUser cannot change are refused before any call."""

from __future__ import annotations

import socket

import pytest

from tests.client.support import signed_in
from tests.e2e.harness import RunningServer
from usermgmt import (
    UPDATABLE_FIELDS,
    PermissionDenied,
    UnknownField,
    UsermgmtClient,
    update_request_from_user,
    update_user_request,
)
from usermgmt.v1 import user_pb2


def test_keyword_arguments_become_the_mask() -> None:
    request = update_user_request(
        "me", etag="v3", display_name="Alice", phone_number="", notification_channel="sms"
    )
    assert list(request.update_mask.paths) == [
        "display_name",
        "phone_number",
        "notification_channel",
    ]
    assert request.user.user_id == "me" and request.user.etag == "v3"
    assert request.user.display_name == "Alice"
    assert request.user.notification_channel == user_pb2.NOTIFICATION_CHANNEL_SMS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("disabled", user_pb2.USER_STATE_DISABLED),
        ("USER_STATE_ACTIVE", user_pb2.USER_STATE_ACTIVE),
        (user_pb2.USER_STATE_DISABLED, user_pb2.USER_STATE_DISABLED),
    ],
)
def test_enum_values_by_name_or_number(value: object, expected: int) -> None:
    assert update_user_request("u1", state=value).user.state == expected


def test_roles_replace_the_list() -> None:
    request = update_user_request("u1", roles=["admin", "ops"])
    assert list(request.user.roles) == ["admin", "ops"]
    assert list(update_user_request("u1", roles=[]).update_mask.paths) == ["roles"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"displayname": "x"}, "not a field of User; updatable fields are display_name"),
        ({"pending_email": "a@b.c"}, "set by the server"),
        ({"create_time": None}, "set by the server"),
        ({"password": "secret"}, "not a field of User"),
        ({}, "nothing to update"),
    ],
)
def test_unknown_and_output_only_fields_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(UnknownField, match=message):
        update_user_request("me", **fields)


@pytest.mark.parametrize(
    "fields",
    [{"state": "sleeping"}, {"state": 42}, {"roles": "admin"}, {"display_name": 5}],
)
def test_bad_values_are_refused(fields: dict) -> None:
    with pytest.raises(ValueError):
        update_user_request("me", **fields)


def test_a_partial_user_names_its_set_fields() -> None:
    partial = user_pb2.User(etag="v2", display_name="New", phone_number="+447700900123")
    request = update_request_from_user(partial)
    assert sorted(request.update_mask.paths) == ["display_name", "phone_number"]
    assert (request.user.user_id, request.user.etag) == ("me", "v2")
    # Clearing a field needs it named explicitly: proto3 cannot tell empty from unset.
    cleared = update_request_from_user(user_pb2.User(user_id="u1"), paths=["phone_number"])
    assert list(cleared.update_mask.paths) == ["phone_number"]
    with pytest.raises(UnknownField):
        update_request_from_user(user_pb2.User(user_id="u1", email_verified=True))
    assert set(UPDATABLE_FIELDS) <= set(user_pb2.User.DESCRIPTOR.fields_by_name)


async def test_unknown_fields_fail_before_any_call() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens there: a call would fail with Unavailable instead.
    async with UsermgmtClient(f"127.0.0.1:{port}") as client:
        with pytest.raises(UnknownField):
            await client.users.update("me", nickname="x")


async def test_updates_through_the_server(server: RunningServer) -> None:
    client = await signed_in(server.address)
    async with client:
        before = await client.users.get("me")
        changed = await client.users.update(
            "me",
            etag=before.etag,
            display_name="Kw Args",
            phone_number="+447700900123",
            notification_channel="sms",
        )
        assert (changed.display_name, changed.phone_number) == ("Kw Args", "+447700900123")
        assert changed.notification_channel == user_pb2.NOTIFICATION_CHANNEL_SMS
        assert changed.username == before.username  # not in the mask: untouched

        cleared = await client.users.update_from(
            user_pb2.User(
                etag=changed.etag, notification_channel=user_pb2.NOTIFICATION_CHANNEL_EMAIL
            ),
        )
        assert cleared.notification_channel == user_pb2.NOTIFICATION_CHANNEL_EMAIL
        assert cleared.phone_number == "+447700900123"
        cleared = await client.users.update_from(
            user_pb2.User(etag=cleared.etag), paths=["phone_number"]
        )
        assert cleared.phone_number == ""
        assert cleared.display_name == "Kw Args"

        with pytest.raises(PermissionDenied):
            await client.users.update("me", roles=["admin"])


async def test_administrators_change_roles_and_state(
    server: RunningServer, admin: UsermgmtClient
) -> None:
    client = await signed_in(server.address)
    async with client:
        user_id = client.session.user_id  # type: ignore[union-attr]
    updated = await admin.users.update(user_id, roles=["ops"], state="disabled")
    assert list(updated.roles) == ["ops"]
    assert updated.state == user_pb2.USER_STATE_DISABLED
