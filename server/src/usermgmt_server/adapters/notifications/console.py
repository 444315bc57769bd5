"""Embedded mode: show outgoing codes on the console so a developer can use them at once."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from usermgmt_server.domain.model import OneTimeCode, User
from usermgmt_server.domain.ports import Notifier

logger = logging.getLogger(__name__)


class ConsoleNotifier:
    """``Notifier`` that prints each code to a stream (never to the log)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send_code(self, user: User, code: OneTimeCode, plain_code: str) -> None:
        """Print who the code is for and the code."""
        stream = self._stream or sys.stdout
        purpose = code.purpose.value.lower().replace("_", " ")
        print(f"[embedded mail] to {code.target}: {purpose} code {plain_code}", file=stream)
        stream.flush()


class FanOutNotifier:
    """``Notifier`` that hands every message to several notifiers in turn."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self._notifiers = list(notifiers)

    async def send_code(self, user: User, code: OneTimeCode, plain_code: str) -> None:
        """Send through each notifier."""
        for notifier in self._notifiers:
            await notifier.send_code(user, code, plain_code)


class UndeliverableNotifier:
    """``Notifier`` for a server without a topic: says loudly, without the code, that nothing
    could be sent."""

    async def send_code(self, user: User, code: OneTimeCode, plain_code: str) -> None:
        """Log that the code could not be delivered."""
        logger.error(
            "no notification topic configured (USERMGMT_TOPIC_ARN); code not delivered",
            extra={"user_id": user.user_id, "purpose": code.purpose.value},
        )
