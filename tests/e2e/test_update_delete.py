"""GetUser, UpdateUser and DeleteUser: masks, etags, guard moves and freeing."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import field_mask_pb2

from tests.e2e.harness import Api, RunningServer, bearer, expect_error, scan_table, unique
from usermgmt.v1 import auth_service_pb2, user_pb2, user_service_pb2


def _update(user: user_pb2.User, *paths: str) -> user_service_pb2.UpdateUserRequest:
    return user_service_pb2.UpdateUserRequest(
        user=user, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )


async def test_get_me_and_by_id(api: Api) -> None:
    registered, token = await api.new_user_with_token()
    me = await api.users.GetUser(
        user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
    )
    by_id = await api.users.GetUser(
        user_service_pb2.GetUserRequest(user_id=registered.user.user_id), metadata=bearer(token)
    )
    assert me.user == by_id.user == registered.user


async def test_update_changes_only_masked_fields_and_the_etag(api: Api) -> None:
    registered, token = await api.new_user_with_token()
    user = registered.user
    changed = user_pb2.User(user_id="me", display_name="New Name", username="ignored-name")
    response = await api.users.UpdateUser(_update(changed, "display_name"), metadata=bearer(token))
    assert response.user.display_name == "New Name"
    assert response.user.username == user.username
    assert response.user.etag != user.etag
    assert response.user.update_time.ToDatetime() >= user.update_time.ToDatetime()


async def test_update_without_mask_applies_populated_fields(api: Api) -> None:
    registered, token = await api.new_user_with_token()
    response = await api.users.UpdateUser(
        user_service_pb2.UpdateUserRequest(
            user=user_pb2.User(user_id="me", display_name="Implied")
        ),
        metadata=bearer(token),
    )
    assert response.user.display_name == "Implied"
    assert response.user.email == registered.user.email


async def test_mask_paths_are_checked(api: Api) -> None:
    _, token = await api.new_user_with_token()
    user = user_pb2.User(user_id="me", display_name="x")
    unknown = await expect_error(
        api.users.UpdateUser(_update(user, "nickname"), metadata=bearer(token))
    )
    assert unknown.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_mask.paths[0]" in unknown.violations
    immutable = await expect_error(
        api.users.UpdateUser(_update(user, "display_name", "user_id"), metadata=bearer(token))
    )
    assert "update_mask.paths[1]" in immutable.violations
    roles = await expect_error(api.users.UpdateUser(_update(user, "roles"), metadata=bearer(token)))
    assert roles.code == grpc.StatusCode.PERMISSION_DENIED
    state = await expect_error(api.users.UpdateUser(_update(user, "state"), metadata=bearer(token)))
    assert state.code == grpc.StatusCode.PERMISSION_DENIED


async def test_admin_changes_roles_and_state(api: Api, admin_token: str) -> None:
    registered = await api.register()
    user = user_pb2.User(
        user_id=registered.user.user_id,
        roles=["billing.viewer", "support"],
        state=user_pb2.USER_STATE_DISABLED,
    )
    response = await api.users.UpdateUser(
        _update(user, "roles", "state"), metadata=bearer(admin_token)
    )
    assert list(response.user.roles) == ["billing.viewer", "support"]
    assert response.user.state == user_pb2.USER_STATE_DISABLED
    bad = await expect_error(
        api.users.UpdateUser(
            _update(user_pb2.User(user_id=registered.user.user_id, roles=["Not Valid"]), "roles"),
            metadata=bearer(admin_token),
        )
    )
    assert "user.roles[0]" in bad.violations


async def test_email_change_moves_the_guard(api: Api) -> None:
    registered, token = await api.new_user_with_token()
    old_email = registered.user.email
    new_email = f"{unique('moved')}@example.com"
    response = await api.users.UpdateUser(
        _update(user_pb2.User(user_id="me", email=new_email), "email"), metadata=bearer(token)
    )
    assert response.user.email == new_email
    # The old address is free again, the new one is held.
    await api.register(email=old_email)
    taken = await expect_error(api.register(email=new_email.upper()))
    assert taken.reason == "EMAIL_TAKEN"
    # Sign-in follows the new address.
    assert await api.login(new_email)


async def test_username_change_to_a_taken_name_changes_nothing(api: Api) -> None:
    other = await api.register()
    registered, token = await api.new_user_with_token()
    taken = await expect_error(
        api.users.UpdateUser(
            _update(
                user_pb2.User(user_id="me", username=other.user.username.upper(), display_name="Z"),
                "username",
                "display_name",
            ),
            metadata=bearer(token),
        )
    )
    assert (taken.code, taken.reason) == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")
    me = await api.users.GetUser(
        user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
    )
    assert me.user == registered.user


async def test_stale_etag_is_aborted(api: Api) -> None:
    registered, token = await api.new_user_with_token()
    stale = registered.user.etag
    await api.users.UpdateUser(
        _update(user_pb2.User(user_id="me", display_name="first"), "display_name"),
        metadata=bearer(token),
    )
    error = await expect_error(
        api.users.UpdateUser(
            _update(user_pb2.User(user_id="me", display_name="second", etag=stale), "display_name"),
            metadata=bearer(token),
        )
    )
    assert (error.code, error.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")


async def test_two_concurrent_updates_with_one_etag_one_wins(api: Api) -> None:
    for _ in range(5):
        registered, token = await api.new_user_with_token()
        etag = registered.user.etag
        results = await asyncio.gather(
            *(
                api.users.UpdateUser(
                    _update(
                        user_pb2.User(user_id="me", display_name=name, etag=etag), "display_name"
                    ),
                    metadata=bearer(token),
                )
                for name in ("left", "right")
            ),
            return_exceptions=True,
        )
        wins = [r for r in results if isinstance(r, user_service_pb2.UpdateUserResponse)]
        losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(wins) == 1 and len(losses) == 1
        assert losses[0].code() == grpc.StatusCode.ABORTED


async def test_delete_frees_username_and_email(
    api: Api, server: RunningServer, moto_endpoint: str
) -> None:
    registered, token = await api.new_user_with_token()
    user = registered.user
    stale = await expect_error(
        api.users.DeleteUser(
            user_service_pb2.DeleteUserRequest(user_id="me", etag="v999"), metadata=bearer(token)
        )
    )
    assert stale.code == grpc.StatusCode.ABORTED
    await api.users.DeleteUser(
        user_service_pb2.DeleteUserRequest(user_id="me", etag=user.etag), metadata=bearer(token)
    )
    items = await scan_table(moto_endpoint, server.settings.table_name)
    # Refresh-token items expire through TTL; they can no longer renew anything.
    leftovers = [i for i in items if i.get("user_id") == user.user_id]
    assert all(str(i["pk"]).startswith(("FAMILY#", "REFRESH#")) for i in leftovers)
    again = await api.register(user.username, email=user.email)
    assert again.user.user_id != user.user_id


async def test_deleted_users_sessions_end(api: Api) -> None:
    registered = await api.register()
    signed_in = await api.auth.Authenticate(
        auth_service_pb2.AuthenticateRequest(
            login=registered.user.username, password="correct horse battery"
        )
    )
    token = signed_in.session.access_token
    await api.users.DeleteUser(
        user_service_pb2.DeleteUserRequest(user_id="me"), metadata=bearer(token)
    )
    refresh = await expect_error(
        api.auth.RefreshToken(
            auth_service_pb2.RefreshTokenRequest(refresh_token=signed_in.session.refresh_token)
        )
    )
    assert refresh.code == grpc.StatusCode.UNAUTHENTICATED
    me = await expect_error(
        api.users.GetUser(user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token))
    )
    # Within the session-cache window the token still authenticates, but the account is gone.
    assert me.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND)


async def test_deleted_user_is_not_found(api: Api, admin_token: str) -> None:
    registered = await api.register()
    request = user_service_pb2.DeleteUserRequest(user_id=registered.user.user_id)
    await api.users.DeleteUser(request, metadata=bearer(admin_token))
    missing = await expect_error(
        api.users.GetUser(
            user_service_pb2.GetUserRequest(user_id=registered.user.user_id),
            metadata=bearer(admin_token),
        )
    )
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    again = await expect_error(api.users.DeleteUser(request, metadata=bearer(admin_token)))
    assert again.code == grpc.StatusCode.NOT_FOUND


async def test_notification_preferences(api: Api) -> None:
    registered, token = await api.new_user_with_token()
    assert registered.user.notification_channel == user_pb2.NOTIFICATION_CHANNEL_EMAIL
    response = await api.users.UpdateUser(
        _update(
            user_pb2.User(
                user_id="me",
                notification_channel=user_pb2.NOTIFICATION_CHANNEL_SMS,
                phone_number="+447700900123",
            ),
            "notification_channel",
            "phone_number",
        ),
        metadata=bearer(token),
    )
    assert response.user.notification_channel == user_pb2.NOTIFICATION_CHANNEL_SMS
    assert response.user.phone_number == "+447700900123"
    me = await api.users.GetUser(
        user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
    )
    assert me.user == response.user
    for bad in ("07700900123", "+0123", "+1234567890123456", "+44 7700 900123"):
        error = await expect_error(
            api.users.UpdateUser(
                _update(user_pb2.User(user_id="me", phone_number=bad), "phone_number"),
                metadata=bearer(token),
            )
        )
        assert "user.phone_number" in error.violations, bad
    unset = await expect_error(
        api.users.UpdateUser(
            _update(user_pb2.User(user_id="me"), "notification_channel"), metadata=bearer(token)
        )
    )
    assert "user.notification_channel" in unset.violations
