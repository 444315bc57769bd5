"""The server interceptor that authenticates callers, enforces the permission table and turns
domain errors into rich gRPC statuses."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

from usermgmt_server.api.client_address import client_ip
from usermgmt_server.api.permissions import Access, Rule, rule_for
from usermgmt_server.api.principal import bind_principal
from usermgmt_server.api.rate_limit import RateLimiter
from usermgmt_server.api.session_guard import SessionGuard
from usermgmt_server.api.status import internal_status, status_for
from usermgmt_server.domain.errors import (
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
    UsermgmtError,
)
from usermgmt_server.domain.lookup import ME
from usermgmt_server.domain.model import Principal
from usermgmt_server.domain.ports import AccessTokenVerifier

logger = logging.getLogger(__name__)

_BEARER_PREFIX = "bearer "
_MAX_TOKEN_LENGTH = 8192


class CallGuardInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary-response RPC: rate-limit, authenticate, authorize, check the session,
    map errors, log the outcome.

    RPCs of the usermgmt package that are missing from the permission table are refused, so
    a new RPC is closed until someone decides who may call it.
    """

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        session_guard: SessionGuard,
        limiter: RateLimiter,
        trusted_proxy_hops: int,
    ) -> None:
        self._verifier = verifier
        self._session_guard = session_guard
        self._limiter = limiter
        self._trusted_proxy_hops = trusted_proxy_hops

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        metadata = handler_call_details.invocation_metadata or ()
        rule = rule_for(method)
        if handler.unary_unary is not None:
            behavior = self._guard(method, rule, metadata, handler.unary_unary)
            return grpc.unary_unary_rpc_method_handler(
                behavior,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            behavior = self._guard(method, rule, metadata, handler.stream_unary, streaming=True)
            return grpc.stream_unary_rpc_method_handler(
                behavior,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _guard(
        self,
        method: str,
        rule: Rule | None,
        metadata: Sequence[tuple[str, Any]],
        behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
        *,
        streaming: bool = False,
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                self._limit(rule, metadata, context)
                principal = self._authorize(rule, metadata, None if streaming else request)
                if principal is not None:
                    await self._session_guard.check(principal, method)
                bind_principal(principal)
                return await behavior(request, context)
            except UsermgmtError as error:
                status = status_for(error)
                code = status.code
                await context.abort(status.code, status.details, status.trailing_metadata)
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception:
                logger.exception("unexpected error", extra={"method": method})
                status = internal_status()
                code = status.code
                await context.abort(status.code, status.details, status.trailing_metadata)
            finally:
                _log_outcome(method, code, started)

        return guarded

    def _limit(self, rule: Rule | None, metadata: Sequence[tuple[str, Any]], context: Any) -> None:
        if rule is None or rule.rate_group is None:
            return
        address = client_ip(metadata, context.peer(), self._trusted_proxy_hops)
        retry_after = self._limiter.check(rule.rate_group, address)
        if retry_after is not None:
            raise RateLimited(retry_after)

    def _authorize(
        self, rule: Rule | None, metadata: Sequence[tuple[str, Any]], request: Any
    ) -> Principal | None:
        if rule is None:
            raise PermissionDenied("this method is not open to any caller")
        # A token sent to a public method must still be valid; it can unlock admin options.
        if rule.access is Access.PUBLIC and not any(key == "authorization" for key, _ in metadata):
            return None
        principal = self._verifier.verify(_bearer_token(metadata))
        if rule.access is Access.ADMIN and not principal.is_admin:
            raise PermissionDenied("administrators only")
        if rule.access is Access.SELF_OR_ADMIN and not principal.is_admin:
            target = rule.target(request) if rule.target and request is not None else ""
            # An empty target is left to the handler, which reports it as a missing field.
            if target not in ("", ME, principal.user_id):
                raise PermissionDenied("only administrators may access other users")
        return principal


def _bearer_token(metadata: Sequence[tuple[str, Any]]) -> str:
    values = [value for key, value in metadata if key == "authorization"]
    if len(values) != 1 or not isinstance(values[0], str):
        raise NotAuthenticated("send exactly one 'authorization: Bearer <token>' header")
    value = values[0]
    if not value.lower().startswith(_BEARER_PREFIX):
        raise NotAuthenticated("the authorization header must use the Bearer scheme")
    token = value[len(_BEARER_PREFIX) :].strip()
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise NotAuthenticated()
    return token


def _log_outcome(method: str, code: grpc.StatusCode, started: float) -> None:
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    level = logging.DEBUG if code is grpc.StatusCode.OK else logging.INFO
    if code is grpc.StatusCode.INTERNAL:
        level = logging.ERROR
    logger.log(level, "rpc", extra={"method": method, "code": code.name, "ms": elapsed_ms})
