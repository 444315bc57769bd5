"""Embedded mode: an in-process AWS emulator (moto) so the service runs with no AWS account."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

# moto accepts any credentials; fixed ones keep real credentials from being sent anywhere.
EMBEDDED_CREDENTIALS = {"aws_access_key_id": "embedded", "aws_secret_access_key": "embedded"}


@contextmanager
def embedded_aws() -> Iterator[str]:
    """Run a moto server on a free loopback port; yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "embedded mode needs the 'embedded' extra: pip install 'usermgmt-server[embedded]'"
        ) from error
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    logger.info("embedded AWS emulator started", extra={"endpoint": endpoint})
    try:
        yield endpoint
    finally:
        server.stop()
