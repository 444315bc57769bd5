"""Delivery of rendered messages: e-mail through SES (v2 API), SMS through SNS.

A sender either delivers or raises ``DeliveryFailed``, so that the worker leaves the message in
the queue to be retried. The exception carries the channel and the AWS error code only: AWS
error messages can quote the recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from usermgmt_server.adapters.dynamodb.errors import error_code
from usermgmt_server.notifier.templates import EmailMessage, SmsMessage


class DeliveryFailed(Exception):
    """The message could not be handed over for delivery; retrying may succeed."""

    def __init__(self, channel: str, cause: str) -> None:
        super().__init__(f"{channel} delivery failed ({cause})")
        self.channel = channel
        self.cause = cause


class EmailSender(Protocol):
    """Sends e-mails."""

    async def send(self, recipient: str, message: EmailMessage) -> str:
        """Send ``message`` to ``recipient``; the provider's message id, or raise."""
        ...


class SmsSender(Protocol):
    """Sends text messages."""

    async def send(self, recipient: str, message: SmsMessage) -> str:
        """Send ``message`` to the E.164 number ``recipient``; the message id, or raise."""
        ...


@dataclass(frozen=True, slots=True)
class Senders:
    """One sender per channel."""

    email: EmailSender
    sms: SmsSender


def _failure(channel: str, error: Exception) -> DeliveryFailed:
    cause = error_code(error) if isinstance(error, ClientError) else type(error).__name__
    return DeliveryFailed(channel, cause or type(error).__name__)


class SesEmailSender:
    """``EmailSender`` on the SES v2 ``SendEmail`` API (simple content: text and HTML parts)."""

    def __init__(self, sesv2_client: Any, from_address: str) -> None:
        self._ses = sesv2_client
        self._from = from_address

    async def send(self, recipient: str, message: EmailMessage) -> str:
        """Send ``message`` from the configured address; SES's message id."""
        try:
            response = await self._ses.send_email(
                FromEmailAddress=self._from,
                Destination={"ToAddresses": [recipient]},
                Content={
                    "Simple": {
                        "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                        "Body": {
                            "Text": {"Data": message.text, "Charset": "UTF-8"},
                            "Html": {"Data": message.html, "Charset": "UTF-8"},
                        },
                    }
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise _failure("email", error) from error
        return str(response.get("MessageId", ""))


class SnsSmsSender:
    """``SmsSender`` on SNS ``Publish`` to a phone number (transactional SMS)."""

    def __init__(self, sns_client: Any) -> None:
        self._sns = sns_client

    async def send(self, recipient: str, message: SmsMessage) -> str:
        """Send ``message`` to ``recipient``; SNS's message id."""
        try:
            response = await self._sns.publish(
                PhoneNumber=recipient,
                Message=message.text,
                MessageAttributes={
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise _failure("sms", error) from error
        return str(response.get("MessageId", ""))


__all__ = [
    "DeliveryFailed",
    "EmailSender",
    "Senders",
    "SesEmailSender",
    "SmsSender",
    "SnsSmsSender",
]
