"""Local verification of usermgmt access tokens for other services (extra ``verify``).

``TokenVerifier`` fetches the public keys once through AuthService/GetJwks, caches them, and
checks each token without a call to usermgmt: the ES256 signature with the key named by the
token's ``kid`` (the algorithm pinned to the one the key set declares for it: never ``none``
or an HMAC algorithm), the header (``typ: at+jwt``, nothing but ``alg``, ``typ`` and
``kid``), ``iss``, ``aud``, ``exp``/``nbf``/``iat`` with a leeway, and the claims it returns.
A token signed by a key the cache does not know makes the verifier fetch the key set again
(a rotation), at most once every ``min_refresh_interval`` seconds. A token that passed is
remembered until it expires or the key set changes, so presenting it again costs a lookup and
the time checks, not another signature check::

    async with TokenVerifier("usermgmt.internal:443", tls=True) as verifier:
        claims = await verifier.verify(token)      # AccessTokenClaims
        if not claims.is_admin: ...

The exceptions::

    VerificationError           base
    ├── InvalidToken            the token is malformed, forged, or fails a claim check
    │   ├── ExpiredToken        ``exp`` (plus leeway) has passed, or ``nbf``/``iat`` is ahead
    │   └── UnknownSigningKey   no key of the current key set has the token's ``kid``
    └── KeySetUnavailable       the key set could not be fetched (the token was not judged)

Answer ``InvalidToken`` with UNAUTHENTICATED and ``KeySetUnavailable`` with UNAVAILABLE.
A token of a revoked session stays valid here until it expires: only usermgmt itself knows
about revocation.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any

import grpc

try:
    import jwt
    from jwt.algorithms import has_crypto
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "usermgmt.verify needs the 'verify' extra: pip install 'usermgmt-client[verify]'"
    ) from missing

from usermgmt._client import UsermgmtClient
from usermgmt._errors import UsermgmtError

if not has_crypto:  # pragma: no cover - pyjwt[crypto] brings cryptography
    raise ImportError("usermgmt.verify needs 'cryptography': pip install 'usermgmt-client[verify]'")

__all__ = [
    "AccessTokenClaims",
    "ExpiredToken",
    "InvalidToken",
    "KeySetUnavailable",
    "TokenVerifier",
    "UnknownSigningKey",
    "VerificationError",
]

logger = logging.getLogger("usermgmt.verify")

TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_CHARS = 8192
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")
_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})
# Three base64url segments; the signature may not be empty.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# The asymmetric algorithms a key set may declare, with the key type and curve each needs.
_KEY_SHAPES = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}


class VerificationError(Exception):
    """Base of the verifier's exceptions."""


class InvalidToken(VerificationError):
    """The token is not a valid access token of this issuer and audience."""


class ExpiredToken(InvalidToken):
    """The token has expired (or is not valid yet), beyond the leeway."""


class UnknownSigningKey(InvalidToken):
    """The token names a key (``kid``) that the issuer's key set does not hold."""


class KeySetUnavailable(VerificationError):
    """The key set could not be fetched, so the token could not be checked."""


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """The verified claims of an access token."""

    subject: str
    roles: tuple[str, ...]
    issuer: str
    audience: str
    issued_at: datetime
    expires_at: datetime
    not_before: datetime | None
    token_id: str
    key_id: str
    claims: Mapping[str, Any] = field(repr=False)

    @property
    def user_id(self) -> str:
        """The account the token was issued to (``sub``)."""
        return self.subject

    @property
    def is_admin(self) -> bool:
        """Whether the account had the ``admin`` role when the token was issued."""
        return "admin" in self.roles

    def has_role(self, role: str) -> bool:
        """Whether the account had ``role`` when the token was issued."""
        return role in self.roles


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    algorithm: str
    key: Any


class TokenVerifier:
    """Verifies usermgmt access tokens with the issuer's public keys, fetched and cached.

    ``source`` is a ``UsermgmtClient`` (not closed by the verifier) or a target to open one
    (``tls`` as for the client). ``issuer`` and ``audience`` must match the server's
    ``USERMGMT_JWT_ISSUER`` and ``USERMGMT_JWT_AUDIENCE``. ``leeway`` (seconds) absorbs clock
    skew. The key set is fetched on first use, again after ``max_key_age`` seconds, and when a
    token names an unknown key — at most once every ``min_refresh_interval`` seconds, so
    tokens with made-up key ids cannot make the verifier flood the issuer. ``clock`` gives the
    wall time for ``exp``/``nbf``; ``monotonic`` the time for the key cache.

    The last ``cache_size`` tokens that passed (0: none) are remembered with their claims: a
    service sees the same token on every call for its whole lifetime, and an ES256 signature
    check costs far more than the lookup. A remembered token still fails once it expires, and
    every one is forgotten when the key set is fetched again.
    """

    def __init__(
        self,
        source: UsermgmtClient | str,
        *,
        issuer: str = "usermgmt",
        audience: str = "usermgmt",
        leeway: float = 30.0,
        min_refresh_interval: float = 30.0,
        max_key_age: float = 3600.0,
        tls: bool | grpc.ChannelCredentials = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        cache_size: int = 10_000,
    ) -> None:
        if leeway < 0 or min_refresh_interval < 0 or max_key_age <= 0 or cache_size < 0:
            raise ValueError(
                "leeway, min_refresh_interval and cache_size must be >= 0, max_key_age > 0"
            )
        self._owns_client = isinstance(source, str)
        self._client = UsermgmtClient(source, tls=tls) if isinstance(source, str) else source
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.min_refresh_interval = min_refresh_interval
        self.max_key_age = max_key_age
        self._clock = clock
        self._monotonic = monotonic
        self._keys: dict[str, _Key] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self._cache_size = cache_size
        self._verified: OrderedDict[str, AccessTokenClaims] = OrderedDict()
        #: How many times the key set was fetched (successfully or not).
        self.fetches = 0
        self._decoder = jwt.PyJWT(
            options={
                "require": list(REQUIRED_CLAIMS),
                # Times are checked below against ``clock``.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "strict_aud": True,
            }
        )

    @property
    def key_ids(self) -> frozenset[str]:
        """The ids of the cached keys."""
        return frozenset(self._keys)

    @property
    def remembered_tokens(self) -> int:
        """How many verified tokens are remembered now."""
        return len(self._verified)

    async def verify(self, token: str) -> AccessTokenClaims:
        """The claims of ``token`` if it is a valid access token; otherwise ``InvalidToken``
        (or a subclass), or ``KeySetUnavailable`` when the keys cannot be had."""
        remembered = self._verified.get(token) if isinstance(token, str) else None
        if remembered is not None:
            # A stale key set is fetched again here, which forgets every remembered token.
            await self._key_for(remembered.key_id)
            if self._verified.get(token) is remembered:
                try:
                    self._check_times(remembered.claims)
                except ExpiredToken:
                    del self._verified[token]
                    raise
                self._verified.move_to_end(token)
                return remembered
        header = _checked_header(token)
        key = await self._key_for(header["kid"])
        if header["alg"] != key.algorithm:
            raise InvalidToken(
                f"the token's algorithm {header['alg']!r} is not its key's ({key.algorithm})"
            )
        try:
            claims = self._decoder.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(f"the token was refused: {error}") from None
        verified = self._claims(claims, key.kid)
        if self._cache_size:
            self._verified[token] = verified
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return verified

    async def refresh_keys(self) -> None:
        """Fetch the key set now (ignoring the rate limit); ``KeySetUnavailable`` on failure."""
        async with self._lock:
            await self._fetch()

    async def _key_for(self, kid: str) -> _Key:
        key = self._keys.get(kid)
        if key is not None and not self._stale():
            return key
        async with self._lock:
            key = self._keys.get(kid)
            if key is not None and not self._stale():
                return key
            if self._may_fetch():
                try:
                    await self._fetch()
                except KeySetUnavailable:
                    if not self._keys:
                        raise
                    # Old keys are still good for the tokens they signed.
                    logger.warning("the key set could not be refreshed; using the cached keys")
            elif not self._keys:
                raise KeySetUnavailable("the key set could not be fetched recently; retry later")
            key = self._keys.get(kid)
        if key is None:
            raise UnknownSigningKey(f"no key of the issuer has the id {kid!r}")
        return key

    def _stale(self) -> bool:
        return self._fetched_at is None or (
            self._monotonic() - self._fetched_at >= self.max_key_age
        )

    def _may_fetch(self) -> bool:
        return self._attempted_at is None or (
            self._monotonic() - self._attempted_at >= self.min_refresh_interval
        )

    async def _fetch(self) -> None:
        self._attempted_at = self._monotonic()
        self.fetches += 1
        try:
            document = await self._client.auth.jwks()
        except UsermgmtError as error:
            raise KeySetUnavailable(f"the key set could not be fetched: {error}") from error
        keys = {}
        for jwk in document.get("keys", []):
            key = _usable_key(jwk)
            if key is not None:
                keys[key.kid] = key
        self._keys = keys
        self._verified.clear()
        self._fetched_at = self._monotonic()

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        if _numeric_date(claims, "exp") <= now - self.leeway:
            raise ExpiredToken("the token has expired")
        if "nbf" in claims and _numeric_date(claims, "nbf") > now + self.leeway:
            raise ExpiredToken("the token is not valid yet")
        if _numeric_date(claims, "iat") > now + self.leeway:
            raise ExpiredToken("the token was issued in the future")

    def _claims(self, claims: dict[str, Any], kid: str) -> AccessTokenClaims:
        expires_at = _numeric_date(claims, "exp")
        issued_at = _numeric_date(claims, "iat")
        not_before = _numeric_date(claims, "nbf") if "nbf" in claims else None
        self._check_times(claims)
        subject, roles, token_id = claims["sub"], claims.get("roles", []), claims["jti"]
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("the token has no subject")
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise InvalidToken("the token's roles are not a list of strings")
        if not isinstance(token_id, str):
            raise InvalidToken("the token's jti is not a string")
        return AccessTokenClaims(
            subject=subject,
            roles=tuple(roles),
            issuer=claims["iss"],
            audience=claims["aud"],
            issued_at=_utc(issued_at),
            expires_at=_utc(expires_at),
            not_before=None if not_before is None else _utc(not_before),
            token_id=token_id,
            key_id=kid,
            claims=MappingProxyType(claims),
        )

    async def close(self) -> None:
        """Close the client if the verifier opened it."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> TokenVerifier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def _checked_header(token: object) -> dict[str, Any]:
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise InvalidToken("the token is empty, oversized or not a string")
    if not _COMPACT_JWS.fullmatch(token):
        raise InvalidToken("the token is not a compact JWS")
    # Read here only to choose the key; pyjwt reads the header again when it checks the
    # signature over it (its own reading is strict but slow, so it is done once, not twice).
    encoded = token[: token.index(".")]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:  # binascii.Error and UnicodeDecodeError included
        raise InvalidToken("the token's header cannot be read") from None
    if not isinstance(header, dict):
        raise InvalidToken("the token's header cannot be read")
    if not header.keys() <= _HEADER_MEMBERS:
        extra = ", ".join(sorted(header.keys() - _HEADER_MEMBERS))
        raise InvalidToken(f"the token's header has members this issuer never writes: {extra}")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in TOKEN_TYPES:
        raise InvalidToken("the token is not an access token (typ must be at+jwt)")
    if not isinstance(header.get("kid"), str) or not isinstance(header.get("alg"), str):
        raise InvalidToken("the token's header lacks kid or alg")
    return header


def _usable_key(jwk: Mapping[str, Any]) -> _Key | None:
    """The key of one JWK if it is a signature key of an allowed asymmetric algorithm."""
    kid, kty, crv = jwk.get("kid"), jwk.get("kty"), jwk.get("crv")
    algorithm = jwk.get("alg") or next(
        (alg for alg, shape in _KEY_SHAPES.items() if shape == (kty, crv)), None
    )
    if not isinstance(kid, str) or not kid or algorithm not in _KEY_SHAPES:
        logger.warning("skipping a key the verifier cannot use", extra={"kid": kid})
        return None
    if _KEY_SHAPES[algorithm] != (kty, crv) or jwk.get("use", "sig") != "sig":
        logger.warning("skipping a key whose type does not fit its algorithm", extra={"kid": kid})
        return None
    try:
        key = jwt.PyJWK(dict(jwk), algorithm)
    except jwt.PyJWTError:
        logger.warning("skipping a malformed key", extra={"kid": kid})
        return None
    return _Key(kid=kid, algorithm=algorithm, key=key.key)


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise InvalidToken(f"the token's {name} is not a NumericDate")


def _utc(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidToken("a time claim of the token is out of range") from None
