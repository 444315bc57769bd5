"""ES256-signed JWT access tokens (RFC 9068 profile, RFC 8725 verification rules)."""

from __future__ import annotations

import logging
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from usermgmt_server.adapters.security.signing_keys import ALGORITHM, KeySet
from usermgmt_server.domain.errors import NotAuthenticated
from usermgmt_server.domain.model import IssuedToken, Principal, User
from usermgmt_server.domain.ports import Clock

logger = logging.getLogger(__name__)

TOKEN_TYPE = "at+jwt"
MAX_TOKEN_CHARS = 8192
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")
# Only the members this service writes; this also refuses jku, x5u, jwk, x5c, crit and b64.
_ALLOWED_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})
_ACCEPTED_TYPES = frozenset({TOKEN_TYPE, "application/" + TOKEN_TYPE})
_JTI_BYTES = 16


class _Rejected(Exception):
    """Internal: why a token was refused (logged at debug level, never shown to callers)."""


class JwtAccessTokens:
    """``AccessTokenIssuer`` and ``AccessTokenVerifier`` over ES256-signed JWTs.

    Tokens carry ``iss``, ``aud``, ``sub`` (the user id), ``iat``, ``nbf``, ``exp``, a random
    ``jti`` and ``roles``; the header is ``{"alg": "ES256", "kid": …, "typ": "at+jwt"}``.
    Every time check uses the injected ``clock`` with ``leeway`` either side.
    """

    def __init__(
        self,
        key_set: KeySet,
        *,
        issuer: str,
        audience: str,
        ttl: timedelta,
        clock: Clock,
        leeway: timedelta = timedelta(seconds=30),
    ) -> None:
        ttl_seconds = ttl.total_seconds()
        if ttl_seconds < 1 or ttl_seconds != int(ttl_seconds):
            raise ValueError("the access-token ttl must be a positive whole number of seconds")
        if leeway < timedelta(0):
            raise ValueError("leeway must not be negative")
        self._keys = key_set
        self._issuer = issuer
        self._audience = audience
        self._ttl = int(ttl_seconds)
        self._clock = clock
        self._leeway = leeway.total_seconds()
        # Time claims are checked below against the injected clock, not pyjwt's wall clock.
        self._decoder = jwt.PyJWT(
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "strict_aud": True,
            }
        )

    def issue(self, user: User) -> IssuedToken:
        """A signed access token for ``user`` valid for ``ttl``."""
        issued_at = int(self._clock.now().timestamp())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user.user_id,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + self._ttl,
            "jti": secrets.token_urlsafe(_JTI_BYTES),
            "roles": list(user.roles),
        }
        active = self._keys.active
        token = jwt.encode(
            claims,
            active.private_key,
            algorithm=ALGORITHM,
            headers={"kid": active.kid, "typ": TOKEN_TYPE},
        )
        return IssuedToken(token=token, expires_in=self._ttl)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; ``NotAuthenticated`` for anything else."""
        try:
            return self._verify(token)
        except (_Rejected, jwt.PyJWTError) as error:
            logger.debug("access token rejected", extra={"reason": str(error)})
            raise NotAuthenticated("the access token is invalid or has expired") from None

    def _verify(self, token: str) -> Principal:
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise _Rejected("empty or oversized token")
        if not token.isascii():
            raise _Rejected("not a compact JWS")
        key = self._keys.public_key(self._checked_kid(jwt.get_unverified_header(token)))
        if key is None:
            raise _Rejected("unknown kid")
        claims = self._decoder.decode(
            token, key, algorithms=[ALGORITHM], audience=self._audience, issuer=self._issuer
        )
        self._check_times(claims)
        subject = claims["sub"]
        roles = claims.get("roles")
        if not isinstance(subject, str) or not subject:
            raise _Rejected("bad sub")
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise _Rejected("bad roles")
        return Principal(user_id=subject, roles=tuple(roles), issued_at=_utc(claims, "iat"))

    @staticmethod
    def _checked_kid(header: dict[str, Any]) -> str:
        if not header.keys() <= _ALLOWED_HEADER_MEMBERS:
            raise _Rejected("unexpected header members")
        if header.get("alg") != ALGORITHM:
            raise _Rejected("wrong alg")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
            raise _Rejected("wrong typ")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _Rejected("missing kid")
        return kid

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock.now().timestamp()
        if _numeric_date(claims, "exp") <= now - self._leeway:
            raise _Rejected("expired")
        if _numeric_date(claims, "iat") > now + self._leeway:
            raise _Rejected("issued in the future")
        if "nbf" in claims and _numeric_date(claims, "nbf") > now + self._leeway:
            raise _Rejected("not yet valid")


def _numeric_date(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    # bool is an int subclass, and JSON parsing yields inf/nan for Infinity/NaN: none are dates.
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise _Rejected(f"{name} is not a NumericDate")


def _utc(claims: dict[str, Any], name: str) -> datetime:
    """A NumericDate claim as an aware UTC datetime."""
    try:
        return datetime.fromtimestamp(_numeric_date(claims, name), UTC)
    except (OverflowError, OSError, ValueError):
        raise _Rejected(f"{name} is out of range") from None
