"""Bad input: INVALID_ARGUMENT with field violations, never INTERNAL, and nothing written."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from tests.e2e.harness import Api, RunningServer, bearer, expect_error, scan_table, unique
from usermgmt.v1 import auth_service_pb2, user_pb2, user_service_pb2

GOOD = {"username": "valid-name", "email": "valid@example.com", "password": "long enough pass"}

REGISTER_CASES = [
    ({"username": ""}, "username"),
    ({"username": "ab"}, "username"),
    ({"username": "x" * 65}, "username"),
    ({"username": "has space"}, "username"),
    ({"username": "at@sign"}, "username"),
    ({"email": ""}, "email"),
    ({"email": "not-an-email"}, "email"),
    ({"email": "a@" + "b" * 250 + ".com"}, "email"),
    ({"password": ""}, "password"),
    ({"password": "short"}, "password"),
    ({"password": "é" * 513}, "password"),  # 513 characters but 1026 bytes
    ({"display_name": "x" * 201}, "display_name"),
    ({"display_name": "bell\x07"}, "display_name"),
    ({"request_id": "r" * 129}, "request_id"),
]


@pytest.mark.parametrize(("fields", "field"), REGISTER_CASES)
async def test_register_rejects_bad_fields(
    api: Api, server: RunningServer, moto_endpoint: str, fields: dict[str, str], field: str
) -> None:
    before = _keys(await scan_table(moto_endpoint, server.settings.table_name))
    request = user_service_pb2.RegisterRequest(**{**GOOD, "username": unique(), **fields})
    error = await expect_error(api.users.Register(request))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "INVALID_ARGUMENT"
    assert field in error.violations, error.violations
    # Nothing new: earlier events may leave the outbox meanwhile, nothing may arrive.
    assert _keys(await scan_table(moto_endpoint, server.settings.table_name)) <= before


def _keys(items: list[dict[str, object]]) -> set[tuple[object, object]]:
    return {(item["pk"], item["sk"]) for item in items}


async def test_every_bad_field_is_reported_at_once(api: Api) -> None:
    request = user_service_pb2.RegisterRequest(username="a", email="b", password="c")
    error = await expect_error(api.users.Register(request))
    assert set(error.violations) == {"username", "email", "password"}


async def test_maximum_password_is_accepted_and_never_truncated(api: Api) -> None:
    password = "p" * 1023 + "q"
    registered = await api.register(password=password)
    assert await api.login(registered.user.username, password)
    truncated = await expect_error(api.login(registered.user.username, "p" * 1023 + "r"))
    assert truncated.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("login", "password", "field"),
    [
        ("", "whatever pass", "login"),
        ("someone", "", "password"),
        ("x" * 255, "pw", "login"),
        ("someone", "p" * 1025, "password"),
    ],
)
async def test_authenticate_rejects_bad_fields(
    api: Api, login: str, password: str, field: str
) -> None:
    error = await expect_error(
        api.auth.Authenticate(auth_service_pb2.AuthenticateRequest(login=login, password=password))
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.violations


async def test_update_rejects_bad_values_and_writes_nothing(api: Api) -> None:
    registered, token = await api.new_user_with_token()
    for user, paths, field in (
        (user_pb2.User(user_id="me", email="broken"), ["email"], "user.email"),
        (user_pb2.User(user_id="me", username="no way"), ["username"], "user.username"),
        (
            user_pb2.User(user_id="me", display_name="y" * 201),
            ["display_name"],
            "user.display_name",
        ),
        (user_pb2.User(user_id="me"), [], "update_mask"),
        (user_pb2.User(user_id=""), ["display_name"], "user.user_id"),
    ):
        error = await expect_error(
            api.users.UpdateUser(
                user_service_pb2.UpdateUserRequest(
                    user=user, update_mask=field_mask_pb2.FieldMask(paths=paths)
                ),
                metadata=bearer(token),
            )
        )
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT, (field, error)
        assert field in error.violations, (field, error.violations)
    me = await api.users.GetUser(
        user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
    )
    assert me.user == registered.user


async def test_get_with_empty_or_absurd_id(api: Api, admin_token: str) -> None:
    for user_id in ("", "x" * 500, "bad\nid"):
        error = await expect_error(
            api.users.GetUser(
                user_service_pb2.GetUserRequest(user_id=user_id), metadata=bearer(admin_token)
            )
        )
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "user_id" in error.violations
