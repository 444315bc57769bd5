"""Embedded mode: an in-process AWS emulator (moto) so the service runs with no AWS account."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

# moto accepts any credentials; fixed ones keep real credentials from being sent anywhere.
EMBEDDED_CREDENTIALS = {"aws_access_key_id": "embedded", "aws_secret_access_key": "embedded"}

_DYNAMODB_TARGET_PREFIX = "DynamoDB_"


class _SerializedDynamoDB:
    """WSGI middleware that runs DynamoDB requests one at a time.

    moto's DynamoDB backend has no locking, so two threads can both pass the same condition
    check; real DynamoDB serialises conditional writes. One lock around DynamoDB calls makes the
    emulator linearizable like the real service. Other services (SQS long polls) stay concurrent.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(_DYNAMODB_TARGET_PREFIX):
            with self._lock:
                return list(self._app(environ, start_response))
        return list(self._app(environ, start_response))


def _quiet(handler: type) -> type:
    class QuietRequestHandler(handler):  # type: ignore[misc, valid-type]
        """moto's request handler without the per-request access-log line."""

        def log_request(self, *args: object, **kwargs: object) -> None:
            return

    return QuietRequestHandler


class EmulatorServer:
    """A moto server on loopback whose DynamoDB behaves atomically under concurrent requests
    and answers in time independent of the table's size (``embedded_dynamodb``)."""

    def __init__(self, port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from usermgmt_server import embedded_dynamodb

        embedded_dynamodb.install()
        app = _SerializedDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1", port, app, threaded=True, request_handler=_quiet(MotoRequestHandler)
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The URL clients use as their AWS endpoint."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.shutdown()
        self._thread.join()


@contextmanager
def embedded_aws() -> Iterator[str]:
    """Run the emulator on a free loopback port; yields its endpoint URL."""
    try:
        server = EmulatorServer()
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "embedded mode needs the 'embedded' extra: pip install 'usermgmt-server[embedded]'"
        ) from error
    server.start()
    logger.info("embedded AWS emulator started", extra={"endpoint": server.endpoint})
    try:
        yield server.endpoint
    finally:
        server.stop()
