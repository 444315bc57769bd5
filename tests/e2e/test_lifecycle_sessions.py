"""Sessions: rotating single-use refresh tokens with reuse detection and an absolute lifetime,
logout, the JWK set, and access-token forgeries presented to the real server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e.harness import (
    Api,
    RunningServer,
    authenticate,
    expect_error,
    get_me,
    new_signing_key_pem,
    refresh,
    running_server,
)
from usermgmt.v1 import auth_service_pb2
from usermgmt_server.adapters.security.system import ManualClock

ACCESS_TTL = 900
REFRESH_TTL = 30 * 24 * 3600
DAY = 24 * 3600
REFRESH_TOKEN = re.compile(r"[A-Za-z0-9_-]{43,}")


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
async def server(moto_endpoint: str, clock: ManualClock) -> AsyncIterator[RunningServer]:
    """A server on a clock the tests move, checking revocation on every call."""
    async with running_server(
        moto_endpoint, clock=clock, USERMGMT_SESSION_CACHE_SECONDS="0"
    ) as started:
        yield started


async def signed_in(api: Api) -> tuple[str, auth_service_pb2.AuthenticateResponse]:
    """A new account (its user id) and its first session."""
    registered = await api.register()
    return registered.user.user_id, await authenticate(api, registered.user.username)


async def assert_refresh_refused(api: Api, refresh_token: str) -> None:
    error = await expect_error(refresh(api, refresh_token))
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
    assert error.domain == "usermgmt"


async def assert_access_refused(api: Api, access_token: str) -> None:
    error = await expect_error(get_me(api, access_token))
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


# -- issuing and rotating ------------------------------------------------------------------


async def test_authenticate_opens_a_session_with_a_refresh_token(api: Api) -> None:
    user_id, response = await signed_in(api)
    session = response.session
    assert response.access_token == session.access_token
    assert response.token_type == session.token_type == "Bearer"
    assert response.expires_in == session.expires_in == ACCESS_TTL
    assert session.refresh_expires_in == REFRESH_TTL
    assert REFRESH_TOKEN.fullmatch(session.refresh_token), session.refresh_token
    assert "." not in session.refresh_token, "the refresh token is opaque, not a JWT"
    assert (await get_me(api, session.access_token)).user.user_id == user_id
    again = await authenticate(api, response.user.username)
    assert again.session.refresh_token != session.refresh_token


async def test_refresh_returns_a_new_access_and_refresh_token(api: Api) -> None:
    user_id, response = await signed_in(api)
    renewed = (await refresh(api, response.session.refresh_token)).session
    assert renewed.access_token and renewed.access_token != response.access_token
    assert REFRESH_TOKEN.fullmatch(renewed.refresh_token)
    assert renewed.refresh_token != response.session.refresh_token
    assert renewed.token_type == "Bearer"
    assert renewed.expires_in == ACCESS_TTL
    assert 0 < renewed.refresh_expires_in <= REFRESH_TTL
    assert (await get_me(api, renewed.access_token)).user.user_id == user_id
    again = (await refresh(api, renewed.refresh_token)).session
    assert (await get_me(api, again.access_token)).user.user_id == user_id


async def test_reusing_a_refresh_token_revokes_its_family(api: Api) -> None:
    _, response = await signed_in(api)
    _, bystander = await signed_in(api)
    other_family = await authenticate(api, response.user.username)
    first = response.session.refresh_token
    second = (await refresh(api, first)).session.refresh_token
    third = (await refresh(api, second)).session.refresh_token
    await assert_refresh_refused(api, first)
    await assert_refresh_refused(api, third)  # the newest token of the family died with it
    await assert_refresh_refused(api, second)
    # Other sign-ins of the same account and other accounts keep their sessions.
    await refresh(api, other_family.session.refresh_token)
    await refresh(api, bystander.session.refresh_token)


async def test_twenty_concurrent_refreshes_of_one_token_succeed_at_most_once(api: Api) -> None:
    _, response = await signed_in(api)
    token = response.session.refresh_token
    results = await asyncio.gather(
        *(refresh(api, token) for _ in range(20)), return_exceptions=True
    )
    successes = [r for r in results if isinstance(r, auth_service_pb2.RefreshTokenResponse)]
    failures = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(successes) <= 1, f"{len(successes)} refreshes of one token succeeded"
    assert len(successes) + len(failures) == 20, results
    assert {f.code() for f in failures} == {grpc.StatusCode.UNAUTHENTICATED}
    await assert_refresh_refused(api, token)


async def test_a_session_ends_thirty_days_after_sign_in_however_often_refreshed(
    api: Api, clock: ManualClock
) -> None:
    user_id, response = await signed_in(api)
    clock.advance(seconds=REFRESH_TTL - DAY)
    renewed = (await refresh(api, response.session.refresh_token)).session
    assert renewed.refresh_expires_in == DAY
    clock.advance(seconds=DAY - 1)
    last = (await refresh(api, renewed.refresh_token)).session
    assert last.refresh_expires_in == 1
    assert (await get_me(api, last.access_token)).user.user_id == user_id
    clock.advance(seconds=2)  # 30 days and 1 s after sign-in
    await assert_refresh_refused(api, last.refresh_token)


async def test_logout_ends_the_session_of_the_refresh_token(api: Api) -> None:
    _, response = await signed_in(api)
    other = await authenticate(api, response.user.username)
    current = (await refresh(api, response.session.refresh_token)).session.refresh_token
    answer = await api.auth.Logout(auth_service_pb2.LogoutRequest(refresh_token=current))
    assert answer == auth_service_pb2.LogoutResponse()
    await assert_refresh_refused(api, current)
    await refresh(api, other.session.refresh_token)
    # Ending it again, or a session that never existed, succeeds silently.
    await api.auth.Logout(auth_service_pb2.LogoutRequest(refresh_token=current))
    unknown = await api.auth.Logout(
        auth_service_pb2.LogoutRequest(refresh_token=secrets.token_urlsafe(32))
    )
    assert unknown == auth_service_pb2.LogoutResponse()


async def test_a_refresh_token_is_not_an_access_token(api: Api) -> None:
    _, response = await signed_in(api)
    await assert_access_refused(api, response.session.refresh_token)
    await refresh(api, response.session.refresh_token)  # not spent by the refused call


# -- the public keys -----------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint of an EC public JWK."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def _private_key(server: RunningServer) -> ec.EllipticCurvePrivateKey:
    pem = server.settings.jwt_private_key
    assert pem is not None
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


async def test_jwks_publishes_the_key_that_verifies_issued_tokens(
    api: Api, server: RunningServer, clock: ManualClock
) -> None:
    user_id, response = await signed_in(api)
    header = jwt.get_unverified_header(response.access_token)
    jwks = await api.auth.GetJwks(auth_service_pb2.GetJwksRequest())
    assert jwks.keys
    by_kid = {key.kid: key for key in jwks.keys}
    assert header["kid"] in by_kid
    for key in jwks.keys:
        assert (key.kty, key.crv, key.alg, key.use) == ("EC", "P-256", "ES256", "sig")
    published = by_kid[header["kid"]]
    members = {
        name: getattr(published, name) for name in ("kty", "crv", "x", "y", "kid", "use", "alg")
    }
    assert published.kid == _thumbprint(members)
    public_key = jwt.PyJWK(members).key
    expected = _private_key(server).public_key()
    assert public_key.public_numbers() == expected.public_numbers()
    # The server runs on a manual clock, so time claims are checked against it here.
    claims = jwt.decode(
        response.access_token,
        public_key,
        algorithms=["ES256"],
        audience=server.settings.jwt_audience,
        issuer=server.settings.jwt_issuer,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["sub"] == user_id
    assert claims["iat"] == int(clock.now().timestamp())
    assert claims["exp"] - claims["iat"] == ACCESS_TTL


# -- forged access tokens ------------------------------------------------------------------


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )


def _es256(header: dict[str, Any], claims: dict[str, Any], key: object) -> str:
    extra = {name: value for name, value in header.items() if name != "alg"}
    return jwt.encode(claims, key, algorithm="ES256", headers=extra)  # type: ignore[arg-type]


def _alg_none(header: dict[str, Any], claims: dict[str, Any], server_key: Any) -> str:
    return _unsigned({**header, "alg": "none"}, claims) + "."


def _hs256_with_public_key(header: dict[str, Any], claims: dict[str, Any], server_key: Any) -> str:
    public_pem = server_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _unsigned({**header, "alg": "HS256"}, claims)
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def _unknown_kid(header: dict[str, Any], claims: dict[str, Any], server_key: Any) -> str:
    return _es256({**header, "kid": "no-such-key"}, claims, server_key)


def _foreign_key_same_kid(header: dict[str, Any], claims: dict[str, Any], server_key: Any) -> str:
    return _es256(header, claims, new_signing_key_pem())


def _claims_changed(**changes: object) -> Callable[[dict[str, Any], dict[str, Any], Any], str]:
    def forge(header: dict[str, Any], claims: dict[str, Any], server_key: Any) -> str:
        changed = {**claims, **changes}
        return _es256(header, {k: v for k, v in changed.items() if v is not None}, server_key)

    return forge


def _jku(header: dict[str, Any], claims: dict[str, Any], server_key: Any) -> str:
    return _es256({**header, "jku": "https://attacker.example/jwks.json"}, claims, server_key)


def _jku_to_foreign_key(header: dict[str, Any], claims: dict[str, Any], server_key: Any) -> str:
    foreign = new_signing_key_pem()
    return _es256(
        {**header, "jku": "https://attacker.example/jwks.json", "kid": "attacker-key"},
        claims,
        foreign,
    )


FORGERIES = {
    "alg none": _alg_none,
    "HS256 keyed with the public key PEM": _hs256_with_public_key,
    "unknown kid": _unknown_kid,
    "another key under the server's kid": _foreign_key_same_kid,
    "wrong aud": _claims_changed(aud="someone-else"),
    "wrong iss": _claims_changed(iss="https://attacker.example"),
    "missing exp": _claims_changed(exp=None),
    "jku header": _jku,
    "jku header naming the attacker's key": _jku_to_foreign_key,
}


async def _genuine_parts(api: Api) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """An account's id and the header and claims of a real access token issued to it."""
    user_id, response = await signed_in(api)
    header = jwt.get_unverified_header(response.access_token)
    claims = jwt.decode(response.access_token, options={"verify_signature": False})
    return user_id, header, claims


async def test_a_token_rebuilt_with_the_server_key_is_accepted(
    api: Api, server: RunningServer
) -> None:
    # The control for the forgeries below: the way they are built yields working tokens.
    user_id, header, claims = await _genuine_parts(api)
    token = _es256(header, {**claims, "jti": secrets.token_urlsafe(16)}, _private_key(server))
    assert (await get_me(api, token)).user.user_id == user_id


@pytest.mark.parametrize("forgery", list(FORGERIES))
async def test_forged_access_tokens_are_refused(
    api: Api, server: RunningServer, forgery: str
) -> None:
    _, header, claims = await _genuine_parts(api)
    token = FORGERIES[forgery](header, claims, _private_key(server))
    await assert_access_refused(api, token)


async def test_an_expired_access_token_is_refused(api: Api, clock: ManualClock) -> None:
    user_id, response = await signed_in(api)
    clock.advance(seconds=ACCESS_TTL - 1)
    assert (await get_me(api, response.access_token)).user.user_id == user_id
    clock.advance(seconds=62)  # the lifetime plus a minute of clock-skew leeway has passed
    await assert_access_refused(api, response.access_token)
