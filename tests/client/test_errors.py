"""Typed exceptions: every reason the server sends has its own class, rebuilt with its
details from the rich status, both from the server's status table and over a real channel."""

from __future__ import annotations

import grpc
import pytest

import usermgmt
from tests.client.support import new_account, signed_in
from tests.e2e.harness import PASSWORD, RunningServer, running_server, unique
from usermgmt import (
    EmailTaken,
    EtagMismatch,
    FieldViolation,
    InternalError,
    InvalidArgument,
    InvalidCredentials,
    InvalidPageToken,
    NotServing,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UsermgmtClient,
    UsermgmtError,
    UsernameTaken,
    UserNotFound,
    error_from_status,
)
from usermgmt_server.api.status import (
    STATUS_BY_ERROR,
    internal_status,
    rich_status,
    status_for,
)
from usermgmt_server.domain import errors as server_errors


def _server_error_types() -> list[type[server_errors.UsermgmtError]]:
    found: list[type[server_errors.UsermgmtError]] = []
    pending = [server_errors.UsermgmtError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            found.append(subclass)
            pending.append(subclass)
    return found


def _instance(error_type: type[server_errors.UsermgmtError]) -> server_errors.UsermgmtError:
    if error_type is server_errors.InvalidArgument:
        return server_errors.InvalidArgument([server_errors.FieldViolation("email", "bad", "X")])
    if error_type is server_errors.InvalidPageToken:
        return server_errors.InvalidPageToken("was altered")
    if error_type is server_errors.RetryLater:
        return server_errors.RetryLater("wait", 1.5)
    if error_type in (server_errors.ResendCooldown, server_errors.RateLimited):
        return error_type(1.5)  # type: ignore[call-arg]
    return error_type()  # type: ignore[call-arg]


def _server_statuses() -> list[tuple[str, grpc.Status]]:
    # The server's status table and every domain error it covers (subclasses included).
    types = list(dict.fromkeys([t for t, _ in STATUS_BY_ERROR] + _server_error_types()))
    statuses = [(t.reason, status_for(_instance(t))) for t in types]
    # Statuses sent outside the domain's table: unexpected faults and the readiness probe.
    statuses.append(("INTERNAL", internal_status()))
    statuses.append(
        (
            "NOT_SERVING",
            rich_status(grpc.StatusCode.UNAVAILABLE, "this instance is not serving", "NOT_SERVING"),
        )
    )
    return statuses


@pytest.mark.parametrize(("reason", "status"), _server_statuses(), ids=lambda v: str(v)[:40])
def test_every_server_reason_has_its_own_class(reason: str, status: grpc.Status) -> None:
    error = error_from_status(status.code, status.details, status.trailing_metadata)
    assert type(error) is not UsermgmtError
    assert type(error).default_reason == reason, type(error).__name__
    assert (error.code, error.reason, error.message) == (status.code, reason, status.details)
    assert type(error).default_code == status.code


def test_the_reason_table_covers_the_server_table() -> None:
    server_reasons = {reason for reason, _ in _server_statuses()}
    assert server_reasons <= set(usermgmt._errors.ERROR_BY_REASON)


def test_details_are_rebuilt() -> None:
    violations = [
        server_errors.FieldViolation("password", "too short", "PASSWORD_TOO_SHORT"),
        server_errors.FieldViolation("email", "is required"),
    ]
    status = status_for(server_errors.InvalidArgument(violations))
    error = error_from_status(status.code, status.details, status.trailing_metadata)
    assert error.field_violations == (
        FieldViolation("password", "too short", "PASSWORD_TOO_SHORT"),
        FieldViolation("email", "is required", ""),
    )
    assert str(error) == (
        "INVALID_ARGUMENT: password: too short (PASSWORD_TOO_SHORT); email: is required"
    )

    limited = status_for(server_errors.RateLimited(2.5))
    error = error_from_status(limited.code, limited.details, limited.trailing_metadata)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 2.5
    assert "retry after 2.5 s" in str(error)


def test_statuses_without_error_info_fall_back_to_the_code() -> None:
    unavailable = error_from_status(grpc.StatusCode.UNAVAILABLE, "connection refused")
    assert type(unavailable) is Unavailable and unavailable.reason == ""
    assert str(unavailable) == "UNAVAILABLE: connection refused"
    assert type(error_from_status(grpc.StatusCode.UNKNOWN, "?")) is InternalError
    assert type(error_from_status(grpc.StatusCode.UNIMPLEMENTED, "no")) is UsermgmtError
    garbage = [("grpc-status-details-bin", b"\xff\xff not a status")]
    assert type(error_from_status(grpc.StatusCode.NOT_FOUND, "x", garbage)) is usermgmt.NotFound


def test_a_reason_that_contradicts_the_code_keeps_the_code_family() -> None:
    status = rich_status(grpc.StatusCode.UNAVAILABLE, "odd", "USER_NOT_FOUND")
    error = error_from_status(status.code, status.details, status.trailing_metadata)
    assert type(error) is Unavailable and error.reason == "USER_NOT_FOUND"


def test_families_let_callers_catch_groups() -> None:
    assert issubclass(usermgmt.InvalidPageToken, usermgmt.InvalidArgument)
    assert issubclass(usermgmt.InvalidCredentials, usermgmt.Unauthenticated)
    assert issubclass(usermgmt.UsernameTaken, usermgmt.AlreadyExists)
    assert issubclass(usermgmt.RateLimited, usermgmt.RetryLater)
    assert issubclass(usermgmt.RetryLater, usermgmt.ResourceExhausted)
    assert issubclass(NotServing, Unavailable)
    exported = {name for name in usermgmt.__all__ if isinstance(getattr(usermgmt, name), type)}
    error_classes = {
        name for name in exported if issubclass(getattr(usermgmt, name), UsermgmtError)
    }
    assert {cls.__name__ for cls in usermgmt._errors.ERROR_BY_REASON.values()} <= error_classes


# -- over a real channel ------------------------------------------------------------------------


async def test_bad_input_carries_field_violations(client: UsermgmtClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.users.register("x", "not-an-address", "short")
    error = caught.value
    assert type(error) is InvalidArgument
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    fields = {violation.field for violation in error.field_violations}
    assert {"username", "email", "password"} <= fields
    assert isinstance(error.__cause__, grpc.aio.AioRpcError)


async def test_taken_names_and_missing_users(client: UsermgmtClient) -> None:
    user = await new_account(client)
    with pytest.raises(UsernameTaken):
        await client.users.register(user.username, f"other-{user.email}", PASSWORD)
    with pytest.raises(EmailTaken):
        await client.users.register(unique(), user.email, PASSWORD)
    with pytest.raises(InvalidCredentials) as caught:
        await client.auth.login(user.username, "not the password at all")
    assert caught.value.reason == "INVALID_CREDENTIALS"


async def test_etag_mismatch_and_permission_denied(server: RunningServer, admin) -> None:  # type: ignore[no-untyped-def]
    owner = await signed_in(server.address)
    async with owner:
        before = await owner.users.get("me")
        await owner.users.update("me", display_name="first")
        with pytest.raises(EtagMismatch) as caught:
            await owner.users.update("me", etag=before.etag, display_name="second")
        assert caught.value.code is grpc.StatusCode.ABORTED
        with pytest.raises(PermissionDenied):
            await owner.users.list().collect()
        admin_id = admin.session.user_id
        with pytest.raises(PermissionDenied):
            await owner.users.get(admin_id)
    with pytest.raises(UserNotFound):
        await admin.users.get("00000000-0000-4000-8000-000000000000")


async def test_tampered_page_token(admin: UsermgmtClient) -> None:
    with pytest.raises(InvalidPageToken) as caught:
        await admin.users.list(page_token="not-a-token").collect()
    assert caught.value.field_violations[0].field == "page_token"


async def test_rate_limit_carries_retry_after(moto_endpoint: str) -> None:
    async with (
        running_server(moto_endpoint, USERMGMT_RATE_LIMIT_PER_MINUTE="2") as limited,
        UsermgmtClient(limited.address) as client,
    ):
        limited_error: RateLimited | None = None
        for _ in range(5):
            try:
                await client.auth.login("nobody", "whatever password")
            except InvalidCredentials:
                continue
            except RateLimited as error:
                limited_error = error
                break
    error = limited_error
    assert error is not None, "five sign-ins a minute were allowed with a limit of two"
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.retry_after is not None and 0 < error.retry_after <= 60
