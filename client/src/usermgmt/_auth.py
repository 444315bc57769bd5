"""AuthService: sign-in, session renewal and sign-out, public keys."""

from __future__ import annotations

from typing import Any

from usermgmt._session import Session, TokensCallback
from usermgmt._transport import Transport
from usermgmt.v1 import auth_service_pb2 as pb


class AuthClient:
    """The AuthService calls. ``login`` installs a ``Session`` on the client, after which
    every call sends its access token and renews it when needed."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._stub = transport.auth

    async def login(
        self,
        login: str,
        password: str,
        *,
        on_tokens: TokensCallback | None = None,
        refresh_margin: float = 60.0,
        timeout: float | None = None,
    ) -> Session:
        """Sign in with a username or e-mail address and a password.

        The new session becomes the client's ``session`` and is returned; ``on_tokens`` is
        called now and whenever the tokens are renewed, to store them.
        """
        request = pb.AuthenticateRequest(login=login, password=password)
        response = await self._transport.call(
            self._stub.Authenticate, request, authenticated=False, timeout=timeout
        )
        session = Session.from_proto(
            response.session,
            user=response.user,
            on_tokens=on_tokens,
            refresh_margin=refresh_margin,
        )
        self._transport.session = session
        await session.notify()
        return session

    async def refresh(self, *, timeout: float | None = None) -> Session:
        """Renew the client's session now (normally done automatically)."""
        session = self._require_session()
        if session.refresh_token is None:
            raise ValueError("the session has no refresh token; sign in again")
        request = pb.RefreshTokenRequest(refresh_token=session.refresh_token)
        response = await self._transport.call(
            self._stub.RefreshToken, request, authenticated=False, timeout=timeout
        )
        await session.replace(response.session)
        return session

    async def logout(self, *, timeout: float | None = None) -> None:
        """End the client's session on the server and forget it locally."""
        session = self._require_session()
        if session.refresh_token is not None:
            request = pb.LogoutRequest(refresh_token=session.refresh_token)
            await self._transport.call(
                self._stub.Logout, request, authenticated=False, timeout=timeout
            )
        self._transport.session = None

    async def jwks(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The JWK set (RFC 7517) of the keys that verify access tokens."""
        response = await self._transport.call(
            self._stub.GetJwks, pb.GetJwksRequest(), authenticated=False, timeout=timeout
        )
        return {"keys": [_jwk(key) for key in response.keys]}

    async def revoke_sessions(self, user_id: str = "me", *, timeout: float | None = None) -> None:
        """Sign an account out everywhere (its own, or any for administrators). Revoking your
        own sessions also ends the client's session."""
        request = pb.RevokeSessionsRequest(user_id=user_id)
        await self._transport.call(self._stub.RevokeSessions, request, timeout=timeout)
        session = self._transport.session
        if session is not None and user_id in ("me", session.user_id):
            self._transport.session = None

    def _require_session(self) -> Session:
        session = self._transport.session
        if session is None:
            raise ValueError("not signed in: call login() or pass a Session to the client")
        return session


def _jwk(key: pb.Jwk) -> dict[str, str]:
    members = {
        "kty": key.kty,
        "crv": key.crv,
        "x": key.x,
        "y": key.y,
        "kid": key.kid,
        "use": key.use,
        "alg": key.alg,
    }
    return {name: value for name, value in members.items() if value}
