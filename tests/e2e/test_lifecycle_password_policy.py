"""The password policy as Register reports it: minimum length, byte limit, leaked passwords,
username and e-mail containment, every broken rule at once, and NFKC-equivalent spellings."""

from __future__ import annotations

import grpc

from tests.e2e.harness import (
    Api,
    authenticate,
    expect_error,
    expect_rpc_error,
    full_width,
    running_server,
    unique,
    violation_reasons,
)

FIFTEEN = "vivid otter 92k"
E_ACUTE = "\u00e9"  # two bytes in UTF-8


async def refused(api: Api, password: str, **fields: str) -> set[tuple[str, str]]:
    """The (field, reason) violations of a Register that must fail with INVALID_ARGUMENT."""
    error = await expect_rpc_error(api.register(password=password, **fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    return violation_reasons(error)


def distinct_email() -> str:
    """An address that shares nothing with the usernames of these tests."""
    return f"{unique('mailbox')}@example.com"


async def test_the_minimum_length_is_fifteen_characters(api: Api) -> None:
    assert len(FIFTEEN) == 15
    assert await refused(api, FIFTEEN[:-1]) == {("password", "PASSWORD_TOO_SHORT")}
    registered = await api.register(password=FIFTEEN)
    await authenticate(api, registered.user.username, FIFTEEN)


async def test_leaked_passwords_are_refused(api: Api) -> None:
    for password in ("passwordstandard", "qwertyuiop12345"):
        assert len(password) >= 15
        assert await refused(api, password) == {("password", "PASSWORD_COMMON")}


async def test_with_a_minimum_of_eight_short_leaked_passwords_are_refused(
    moto_endpoint: str,
) -> None:
    async with (
        running_server(moto_endpoint, USERMGMT_PASSWORD_MIN_LENGTH="8") as server,
        server.channel() as channel,
    ):
        api = Api(channel)
        assert await refused(api, "password1") == {("password", "PASSWORD_COMMON")}
        assert await refused(api, "vq7-kx2") == {("password", "PASSWORD_TOO_SHORT")}
        registered = await api.register(password="vq7-kx2z")
        await authenticate(api, registered.user.username, "vq7-kx2z")


async def test_a_password_containing_the_username_is_refused(api: Api) -> None:
    username = unique()
    found = await refused(
        api, f"the {username} pass phrase", username=username, email=distinct_email()
    )
    assert found == {("password", "PASSWORD_CONTAINS_USERNAME")}


async def test_a_password_containing_the_email_address_is_refused(api: Api) -> None:
    email = distinct_email()
    found = await refused(api, f"reach me at {email} anytime", username=unique(), email=email)
    assert found == {("password", "PASSWORD_CONTAINS_EMAIL")}


async def test_passwords_up_to_1024_bytes_are_accepted_and_never_truncated(api: Api) -> None:
    ascii_limit = ("k9-" * 400)[:1024]
    wide_limit = E_ACUTE * 512
    for password in (ascii_limit, wide_limit):
        assert len(password.encode("utf-8")) == 1024
        registered = await api.register(password=password)
        await authenticate(api, registered.user.username, password)
        error = await expect_error(authenticate(api, registered.user.username, password[:-1]))
        assert error.reason == "INVALID_CREDENTIALS"


async def test_passwords_over_1024_bytes_are_too_long(api: Api) -> None:
    # 513 characters but 1025 bytes: the limit counts UTF-8 bytes.
    for password in (("k9-" * 400)[:1025], E_ACUTE * 512 + "k"):
        assert len(password.encode("utf-8")) == 1025
        assert await refused(api, password) == {("password", "PASSWORD_TOO_LONG")}


async def test_every_broken_rule_is_reported_at_once(api: Api) -> None:
    username = unique("u")
    assert len(username) < 15
    found = await refused(api, username, username=username, email=distinct_email())
    assert found == {
        ("password", "PASSWORD_TOO_SHORT"),
        ("password", "PASSWORD_CONTAINS_USERNAME"),
    }
    with_other_fields = await refused(api, "short", username=unique(), email="not-an-address")
    assert ("password", "PASSWORD_TOO_SHORT") in with_other_fields
    assert {field for field, _ in with_other_fields} == {"password", "email"}


async def test_a_full_width_password_matches_its_ascii_form(api: Api) -> None:
    typed = "zebra canoe forty two"
    wide = full_width(typed)
    assert wide != typed
    registered_wide = await api.register(password=wide)
    await authenticate(api, registered_wide.user.username, typed)
    await authenticate(api, registered_wide.user.username, wide)
    registered_ascii = await api.register(password=typed)
    await authenticate(api, registered_ascii.user.username, wide)
