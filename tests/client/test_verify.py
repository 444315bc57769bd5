"""Local verification of access tokens with the issuer's key set: real tokens pass, forged ones
fail each check, key rotation triggers one refetch, and refetches are rate-limited."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.client.support import new_account
from tests.e2e.harness import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    PASSWORD,
    RunningServer,
    running_server,
)
from usermgmt import UsermgmtClient
from usermgmt.verify import (
    AccessTokenClaims,
    ExpiredToken,
    InvalidToken,
    KeySetUnavailable,
    TokenVerifier,
    UnknownSigningKey,
)


class FakeMonotonic:
    """A monotonic clock the test moves by hand (for the key cache and its rate limit)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def verifier(client: UsermgmtClient) -> AsyncIterator[TokenVerifier]:
    async with TokenVerifier(client) as opened:
        yield opened


@pytest.fixture(scope="module")
def signing_key(server: RunningServer) -> Any:
    """The server's own private key (tests forge tokens that only fail one check)."""
    from cryptography.hazmat.primitives import serialization

    pem = server.settings.jwt_private_key
    assert pem
    return serialization.load_pem_private_key(pem.encode(), password=None)


async def _kid(client: UsermgmtClient) -> str:
    (key,) = (await client.auth.jwks())["keys"]
    return key["kid"]


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "usermgmt",
        "aud": "usermgmt",
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "roles": ["ops"],
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _forge(key: Any, kid: str, *, headers: dict[str, Any] | None = None, **changes: Any) -> str:
    return jwt.encode(
        _claims(**changes),
        key,
        algorithm="ES256",
        headers={"kid": kid, "typ": "at+jwt", **(headers or {})},
    )


async def test_a_real_token_yields_its_claims(
    client: UsermgmtClient, verifier: TokenVerifier
) -> None:
    user = await new_account(client, "verified")
    session = await client.auth.login(user.username, PASSWORD)
    claims = await verifier.verify(session.access_token)
    assert isinstance(claims, AccessTokenClaims)
    assert claims.user_id == claims.subject == user.user_id
    assert (claims.issuer, claims.audience, claims.roles) == ("usermgmt", "usermgmt", ())
    assert not claims.is_admin
    assert claims.expires_at > claims.issued_at
    assert claims.key_id == await _kid(client)
    assert verifier.fetches == 1

    admin = await client.auth.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    admin_claims = await verifier.verify(admin.access_token)
    assert admin_claims.is_admin and admin_claims.has_role("admin")
    assert verifier.fetches == 1  # the cached key set served both


async def test_a_forged_claim_set_signed_with_the_real_key_passes(
    client: UsermgmtClient, verifier: TokenVerifier, signing_key: Any
) -> None:
    # The control case for the forgeries below: each differs from this in one thing only.
    token = _forge(signing_key, await _kid(client))
    assert (await verifier.verify(token)).roles == ("ops",)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"aud": "another-service"}, InvalidToken, "audience"),
        ({"iss": "someone-else"}, InvalidToken, "issuer"),
        ({"jti": None}, InvalidToken, "jti"),
        ({"sub": ""}, InvalidToken, "subject"),
        ({"roles": "admin"}, InvalidToken, "roles"),
        ({"exp": int(time.time()) - 120}, ExpiredToken, "expired"),
        ({"nbf": int(time.time()) + 600}, ExpiredToken, "not valid yet"),
        ({"iat": int(time.time()) + 600}, ExpiredToken, "future"),
        ({"exp": "tomorrow"}, InvalidToken, "exp"),
    ],
    ids=lambda value: str(value)[:30],
)
async def test_each_claim_is_checked(
    client: UsermgmtClient,
    verifier: TokenVerifier,
    signing_key: Any,
    changes: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    token = _forge(signing_key, await _kid(client), **changes)
    with pytest.raises(error, match=f"(?i){message}"):
        await verifier.verify(token)


async def test_leeway_absorbs_small_clock_differences(
    client: UsermgmtClient, signing_key: Any
) -> None:
    token = _forge(signing_key, await _kid(client), exp=int(time.time()) - 10)
    async with TokenVerifier(client, leeway=30) as lenient:
        await lenient.verify(token)
    async with TokenVerifier(client, leeway=0) as strict:
        with pytest.raises(ExpiredToken):
            await strict.verify(token)
    later = TokenVerifier(client, clock=lambda: time.time() + 3600)
    with pytest.raises(ExpiredToken):
        await later.verify(_forge(signing_key, await _kid(client)))


async def test_forged_signatures_and_headers_are_refused(
    client: UsermgmtClient, verifier: TokenVerifier, signing_key: Any
) -> None:
    kid = await _kid(client)
    other_key = ec.generate_private_key(ec.SECP256R1())
    genuine = _forge(signing_key, kid)
    header, payload, signature = genuine.split(".")
    tampered_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"ops"', b'"admin"')
    ).decode()
    forgeries = {
        "signed by another key under the real kid": _forge(other_key, kid),
        "payload changed after signing": f"{header}.{tampered_payload}.{signature}",
        "alg none": jwt.encode(
            _claims(), None, algorithm="none", headers={"kid": kid, "typ": "at+jwt"}
        ),
        "HS256 with a guessable secret": jwt.encode(
            _claims(), "x" * 32, algorithm="HS256", headers={"kid": kid, "typ": "at+jwt"}
        ),
        "typ JWT": _forge(signing_key, kid, headers={"typ": "JWT"}),
        "a jku header": _forge(signing_key, kid, headers={"jku": "https://evil.example/jwks"}),
        "signature stripped": f"{header}.{payload}.",
    }
    for name, token in forgeries.items():
        with pytest.raises(InvalidToken):
            await verifier.verify(token)
            pytest.fail(f"accepted a token with {name}")
    not_an_object = jwt.utils.base64url_encode(b'["kid"]').decode() + f".{payload}.{signature}"
    not_utf8 = jwt.utils.base64url_encode(b"\xff\xfe").decode() + f".{payload}.{signature}"
    for garbage in ("", "abc", "a.b.c", "é.é.é", "x" * 9000, None, not_an_object, not_utf8):
        with pytest.raises(InvalidToken):
            await verifier.verify(garbage)  # type: ignore[arg-type]


async def test_unknown_key_ids_refetch_at_most_once_per_interval(
    client: UsermgmtClient, signing_key: Any
) -> None:
    monotonic = FakeMonotonic()
    verifier = TokenVerifier(client, min_refresh_interval=30, monotonic=monotonic)
    stranger = ec.generate_private_key(ec.SECP256R1())
    unknown = _forge(stranger, "not-a-kid-of-this-issuer")

    with pytest.raises(UnknownSigningKey):
        await verifier.verify(unknown)
    assert verifier.fetches == 1
    for _ in range(5):
        with pytest.raises(UnknownSigningKey):
            await verifier.verify(unknown)
    assert verifier.fetches == 1  # inside the interval: no call to the issuer

    monotonic.now += 31
    with pytest.raises(UnknownSigningKey):
        await verifier.verify(unknown)
    assert verifier.fetches == 2
    # Known keys keep working meanwhile, from the cache.
    await verifier.verify(_forge(signing_key, await _kid(client)))
    assert verifier.fetches == 2


async def test_cached_keys_are_refreshed_after_their_maximum_age(
    client: UsermgmtClient, signing_key: Any
) -> None:
    monotonic = FakeMonotonic()
    verifier = TokenVerifier(client, max_key_age=600, monotonic=monotonic)
    token = _forge(signing_key, await _kid(client))
    await verifier.verify(token)
    await verifier.verify(token)
    assert verifier.fetches == 1
    monotonic.now += 601
    await verifier.verify(token)
    assert verifier.fetches == 2


async def test_a_key_rotation_is_picked_up(moto_endpoint: str) -> None:
    """The server restarts with a new signing key: the first token with the new kid makes the
    verifier refetch; tokens of the retired key are then unknown."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    table = f"usermgmt-rotation-{uuid.uuid4().hex[:10]}"
    monotonic = FakeMonotonic()
    async with UsermgmtClient(address) as client:
        verifier = TokenVerifier(client, monotonic=monotonic)
        async with running_server(moto_endpoint, table, USERMGMT_LISTEN_ADDRESS=address):
            old = await client.auth.login(ADMIN_USERNAME, ADMIN_PASSWORD)
            old_claims = await verifier.verify(old.access_token)
        async with running_server(
            moto_endpoint, table, create=False, USERMGMT_LISTEN_ADDRESS=address
        ):
            new = await client.auth.login(ADMIN_USERNAME, ADMIN_PASSWORD)
            monotonic.now += 31  # longer ago than the refetch interval
            new_claims = await verifier.verify(new.access_token)
            assert new_claims.key_id != old_claims.key_id
            assert verifier.fetches == 2
            assert verifier.key_ids == {new_claims.key_id}
            with pytest.raises(UnknownSigningKey):
                await verifier.verify(old.access_token)
            assert verifier.fetches == 2


async def test_an_unreachable_issuer_is_not_the_tokens_fault() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monotonic = FakeMonotonic()
    async with TokenVerifier(f"127.0.0.1:{port}", monotonic=monotonic) as verifier:
        token = _forge(ec.generate_private_key(ec.SECP256R1()), "some-kid")
        with pytest.raises(KeySetUnavailable):
            await verifier.verify(token)
        with pytest.raises(KeySetUnavailable):
            await verifier.verify(token)
        assert verifier.fetches == 1


async def test_a_token_that_passed_is_remembered_until_it_expires(
    client: UsermgmtClient, signing_key: Any
) -> None:
    now = [time.time()]
    verifier = TokenVerifier(client, leeway=0, clock=lambda: now[0])
    token = _forge(signing_key, await _kid(client), exp=int(now[0]) + 60)
    first = await verifier.verify(token)
    assert verifier.remembered_tokens == 1
    assert await verifier.verify(token) is first  # no second signature check

    now[0] += 61
    with pytest.raises(ExpiredToken):
        await verifier.verify(token)
    assert verifier.remembered_tokens == 0


async def test_refused_tokens_are_not_remembered_and_the_memory_is_bounded(
    client: UsermgmtClient, signing_key: Any
) -> None:
    kid = await _kid(client)
    verifier = TokenVerifier(client, cache_size=2)
    with pytest.raises(InvalidToken):
        await verifier.verify(_forge(signing_key, kid, aud="another-service"))
    assert verifier.remembered_tokens == 0
    tokens = [_forge(signing_key, kid) for _ in range(3)]
    for token in tokens:
        await verifier.verify(token)
    assert verifier.remembered_tokens == 2
    oldest_again = await verifier.verify(tokens[0])  # forgotten: checked afresh
    assert oldest_again.token_id == (await verifier.verify(tokens[0])).token_id

    forgetful = TokenVerifier(client, cache_size=0)
    claims = await forgetful.verify(tokens[0])
    assert forgetful.remembered_tokens == 0
    assert await forgetful.verify(tokens[0]) is not claims


async def test_fetching_the_key_set_again_forgets_every_token(
    client: UsermgmtClient, signing_key: Any
) -> None:
    monotonic = FakeMonotonic()
    verifier = TokenVerifier(client, max_key_age=600, monotonic=monotonic)
    token = _forge(signing_key, await _kid(client))
    first = await verifier.verify(token)
    monotonic.now += 601
    again = await verifier.verify(token)
    assert verifier.fetches == 2
    assert again is not first and again.token_id == first.token_id
    assert verifier.remembered_tokens == 1
    with pytest.raises(TypeError):
        again.claims["roles"] = ["admin"]  # type: ignore[index]
