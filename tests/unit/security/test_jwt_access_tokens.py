"""Access tokens: what is issued, and every way a presented token must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from usermgmt_server.adapters.security.access_tokens import JwtAccessTokens
from usermgmt_server.adapters.security.signing_keys import KeySet, SigningKey
from usermgmt_server.adapters.security.system import ManualClock
from usermgmt_server.domain.errors import NotAuthenticated
from usermgmt_server.domain.model import Principal, User, UserState

ISSUER = "https://usermgmt.example"
AUDIENCE = "usermgmt"
TTL = timedelta(minutes=15)
LEEWAY = timedelta(seconds=30)
KEY = SigningKey.generate()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tokens(clock: ManualClock) -> JwtAccessTokens:
    return _tokens(KeySet(KEY), clock)


def _tokens(key_set: KeySet, clock: ManualClock) -> JwtAccessTokens:
    return JwtAccessTokens(
        key_set, issuer=ISSUER, audience=AUDIENCE, ttl=TTL, clock=clock, leeway=LEEWAY
    )


def _user(clock: ManualClock, roles: tuple[str, ...] = ("admin",)) -> User:
    return User(
        user_id="3f1c6d0e-2a4b-4c8d-9e0f-123456789abc",
        username="alice",
        username_key="alice",
        email="alice@example.com",
        email_key="alice@example.com",
        display_name="Alice",
        state=UserState.ACTIVE,
        email_verified=True,
        roles=roles,
        create_time=clock.now(),
        update_time=clock.now(),
        version=1,
        password_hash="$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _compact(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A JWS built by hand, so tests can make tokens pyjwt itself refuses to create."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def _valid_claims(tokens: JwtAccessTokens, clock: ManualClock) -> dict[str, Any]:
    return _segments(tokens.issue(_user(clock)).token)[1]


def _header(**changes: Any) -> dict[str, Any]:
    header = {"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid, **changes}
    return {name: value for name, value in header.items() if value is not None}


def _sign(
    claims: dict[str, Any],
    *,
    key: object = KEY.private_key,
    algorithm: str = "ES256",
    **header_changes: Any,
) -> str:
    header = _header(**({"alg": algorithm} | header_changes))
    return jwt.encode(claims, key, algorithm=algorithm, headers=header)  # type: ignore[arg-type]


def _refused(tokens: JwtAccessTokens, token: str) -> None:
    with pytest.raises(NotAuthenticated) as caught:
        tokens.verify(token)
    assert caught.value.message == "the access token is invalid or has expired"
    assert token not in str(caught.value) or not token


# -- issuing -------------------------------------------------------------------------------


def test_issue_then_verify_round_trip(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    issued = tokens.issue(_user(clock, roles=("admin", "auditor")))
    assert issued.expires_in == 900
    assert tokens.verify(issued.token) == Principal(
        user_id="3f1c6d0e-2a4b-4c8d-9e0f-123456789abc",
        roles=("admin", "auditor"),
        issued_at=clock.now(),
    )


def test_principal_carries_issued_at_in_utc_whole_seconds(
    tokens: JwtAccessTokens, clock: ManualClock
) -> None:
    clock.set(datetime(2025, 6, 1, 12, 30, 45, 987_654, tzinfo=UTC))
    token = tokens.issue(_user(clock)).token
    clock.advance(timedelta(minutes=5))
    issued_at = tokens.verify(token).issued_at
    assert issued_at == datetime(2025, 6, 1, 12, 30, 45, tzinfo=UTC)
    assert issued_at is not None and issued_at.utcoffset() == timedelta(0)


def test_issued_at_follows_the_iat_claim(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    claims = _valid_claims(tokens, clock)
    claims["iat"] -= 3600
    principal = tokens.verify(_sign(claims))
    assert principal.issued_at == clock.now() - timedelta(hours=1)


@pytest.mark.parametrize("iat", [-(10**15), -1e300])
def test_iat_beyond_the_datetime_range_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock, iat: float
) -> None:
    claims = _valid_claims(tokens, clock)
    claims["iat"] = iat
    _refused(tokens, _compact(_header(), claims, lambda data: _es256(KEY.private_key, data)))


def test_user_without_roles(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    issued = tokens.issue(_user(clock, roles=()))
    assert tokens.verify(issued.token).roles == ()


def test_header_and_claims(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    header, claims, _ = _segments(tokens.issue(_user(clock)).token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid}
    now = int(clock.now().timestamp())
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == "3f1c6d0e-2a4b-4c8d-9e0f-123456789abc"
    assert claims["iat"] == claims["nbf"] == now
    assert claims["exp"] == now + 900
    assert claims["roles"] == ["admin"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", claims["jti"])
    assert set(claims) == {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles"}


def test_each_token_has_its_own_jti(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    jtis = {_segments(tokens.issue(_user(clock)).token)[1]["jti"] for _ in range(50)}
    assert len(jtis) == 50


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-5), timedelta(seconds=1.5)])
def test_ttl_must_be_positive_whole_seconds(ttl: timedelta, clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        JwtAccessTokens(KeySet(KEY), issuer=ISSUER, audience=AUDIENCE, ttl=ttl, clock=clock)


# -- time ----------------------------------------------------------------------------------


def test_expired_beyond_leeway_is_refused(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    token = tokens.issue(_user(clock)).token
    clock.advance(TTL + LEEWAY)
    _refused(tokens, token)


def test_expired_within_leeway_is_accepted(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    token = tokens.issue(_user(clock)).token
    clock.advance(TTL + LEEWAY - timedelta(seconds=1))
    assert tokens.verify(token).user_id


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_yet_valid_beyond_leeway_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock, claim: str
) -> None:
    claims = _valid_claims(tokens, clock)
    claims[claim] += 31
    _refused(tokens, _sign(claims))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_small_clock_skew_is_accepted(
    tokens: JwtAccessTokens, clock: ManualClock, claim: str
) -> None:
    claims = _valid_claims(tokens, clock)
    claims[claim] += 29
    assert tokens.verify(_sign(claims)).user_id


def test_token_issued_by_a_fast_instance_is_accepted(
    tokens: JwtAccessTokens, clock: ManualClock
) -> None:
    token = tokens.issue(_user(clock)).token
    clock.advance(seconds=-20)
    assert tokens.verify(token).user_id


@pytest.mark.parametrize(
    "value", ["1700000000", True, None, [1], float("inf"), float("nan"), 10**400]
)
def test_exp_that_is_not_a_number_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock, value: object
) -> None:
    claims = _valid_claims(tokens, clock)
    claims["exp"] = value
    _refused(tokens, _compact(_header(), claims, lambda data: _es256(KEY.private_key, data)))


def test_token_without_nbf_is_accepted(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    claims = _valid_claims(tokens, clock)
    del claims["nbf"]
    assert tokens.verify(_sign(claims)).user_id


# -- claims --------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "jti", "roles"])
def test_missing_required_claim_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock, claim: str
) -> None:
    claims = _valid_claims(tokens, clock)
    del claims[claim]
    _refused(tokens, _sign(claims))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("aud", "another-service"),
        ("aud", [AUDIENCE, "another-service"]),
        ("iss", "https://evil.example"),
        ("iss", [ISSUER]),
        ("sub", ""),
        ("sub", 42),
        ("jti", 7),
        ("roles", "admin"),
        ("roles", {"admin": True}),
        ("roles", ["admin", 1]),
    ],
)
def test_wrong_claim_value_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock, claim: str, value: object
) -> None:
    claims = _valid_claims(tokens, clock)
    claims[claim] = value
    _refused(tokens, _compact(_header(), claims, lambda data: _es256(KEY.private_key, data)))


# -- header and signature ------------------------------------------------------------------


def test_alg_none_is_refused(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    claims = _valid_claims(tokens, clock)
    _refused(tokens, _compact(_header(alg="none"), claims, lambda _: b""))
    _refused(tokens, _compact(_header(alg="None"), claims, lambda _: b""))
    _refused(tokens, _compact(_header(alg=None), claims, lambda _: b""))


def test_hs256_with_the_public_key_as_secret_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock
) -> None:
    claims = _valid_claims(tokens, clock)
    public_pem = KEY.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public_pem, public_pem.strip()):
        forged = _compact(
            _header(alg="HS256"),
            claims,
            lambda data, secret=secret: hmac.new(secret, data, hashlib.sha256).digest(),
        )
        _refused(tokens, forged)


def test_rs256_token_is_refused(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _refused(tokens, _sign(_valid_claims(tokens, clock), key=rsa_key, algorithm="RS256"))


def test_es384_token_is_refused(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    _refused(tokens, _sign(_valid_claims(tokens, clock), key=p384, algorithm="ES384"))


def test_es256_header_over_an_es384_signature_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock
) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    token = _sign(_valid_claims(tokens, clock), key=p384, algorithm="ES384")
    _, payload, signature = token.split(".")
    _refused(tokens, f"{_b64(json.dumps(_header()).encode())}.{payload}.{signature}")


@pytest.mark.parametrize("kid", ["unknown", "", None, 5])
def test_unknown_or_missing_kid_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock, kid: object
) -> None:
    claims = _valid_claims(tokens, clock)
    header = {"alg": "ES256", "typ": "at+jwt"} | ({} if kid is None else {"kid": kid})
    _refused(tokens, _compact(header, claims, lambda data: _es256(KEY.private_key, data)))


def test_other_p256_key_with_our_kid_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock
) -> None:
    impostor = SigningKey.generate()
    _refused(tokens, _sign(_valid_claims(tokens, clock), key=impostor.private_key))


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+JWT+x", "", 1])
def test_wrong_or_missing_typ_is_refused(
    tokens: JwtAccessTokens, clock: ManualClock, typ: object
) -> None:
    claims = _valid_claims(tokens, clock)
    header = {"alg": "ES256", "kid": KEY.kid} | ({} if typ is None else {"typ": typ})
    if typ is None:
        token = _compact(header, claims, lambda data: _es256(KEY.private_key, data))
    else:
        token = jwt.encode(claims, KEY.private_key, algorithm="ES256", headers=header)
    _refused(tokens, token)


@pytest.mark.parametrize("typ", ["AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_is_matched_case_insensitively(
    tokens: JwtAccessTokens, clock: ManualClock, typ: str
) -> None:
    assert tokens.verify(_sign(_valid_claims(tokens, clock), typ=typ)).user_id


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("jku", "https://evil.example/jwks.json"),
        ("x5u", "https://evil.example/cert.pem"),
        ("jwk", {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        ("x5c", ["MIIB"]),
        ("crit", ["exp"]),
        ("b64", True),
    ],
)
def test_key_carrying_or_critical_headers_are_refused(
    tokens: JwtAccessTokens, clock: ManualClock, member: str, value: object
) -> None:
    claims = _valid_claims(tokens, clock)
    token = _compact(_header(**{member: value}), claims, lambda d: _es256(KEY.private_key, d))
    _refused(tokens, token)


def test_hand_built_token_is_accepted_when_correct(
    tokens: JwtAccessTokens, clock: ManualClock
) -> None:
    claims = _valid_claims(tokens, clock)
    token = _compact(_header(), claims, lambda data: _es256(KEY.private_key, data))
    assert tokens.verify(token).user_id == claims["sub"]


def test_tampered_payload_is_refused(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    header, _, signature = tokens.issue(_user(clock, roles=())).token.split(".")
    claims = _valid_claims(tokens, clock) | {"roles": ["admin"]}
    _refused(tokens, f"{header}.{_b64(json.dumps(claims).encode())}.{signature}")


def test_tampered_signature_is_refused(tokens: JwtAccessTokens, clock: ManualClock) -> None:
    token = tokens.issue(_user(clock)).token
    head, signature = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[5] ^= 0x01
    _refused(tokens, f"{head}.{_b64(bytes(raw))}")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "Bearer",
        "abc",
        "a.b.c",
        "....",
        "eyJhbGciOiJFUzI1NiJ9..",
        "not a token at all!",
        "x" * 10_000,
        "\x00\xff",
        "\ud800.\ud800.\ud800",
    ],
)
def test_garbage_is_refused(tokens: JwtAccessTokens, garbage: str) -> None:
    _refused(tokens, garbage)


def test_oversized_token_is_refused_before_parsing(
    tokens: JwtAccessTokens, clock: ManualClock
) -> None:
    claims = _valid_claims(tokens, clock) | {"pad": "x" * 9000}
    _refused(tokens, _sign(claims))


# -- rotation ------------------------------------------------------------------------------


def test_token_of_a_retired_key_is_accepted_while_listed(clock: ManualClock) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    old_token = _tokens(KeySet(old), clock).issue(_user(clock)).token
    rotating = _tokens(KeySet(new, [old.verification_key]), clock)
    assert rotating.verify(old_token).user_id
    assert _segments(rotating.issue(_user(clock)).token)[0]["kid"] == new.kid
    _refused(_tokens(KeySet(new), clock), old_token)


def _es256(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return jwt.get_algorithm_by_name("ES256").sign(data, key)
