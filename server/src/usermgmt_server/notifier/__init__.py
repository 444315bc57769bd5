"""The notifier: delivers the service's notification requests (verification and reset codes,
welcome messages) from an SQS queue subscribed to the event topic, by SES e-mail or SNS SMS,
once per event id, leaving undeliverable messages to the queue's dead-letter queue.

Exceptions: ``PoisonMessage`` (a message that can never be delivered) and ``DeliveryFailed``
(a sender could not hand a message over; retried through the queue).
"""

from usermgmt_server.notifier.embedded import run_embedded_notifier
from usermgmt_server.notifier.markers import ClaimResult, NotificationMarkers
from usermgmt_server.notifier.notifications import Notification, PoisonMessage, parse_body
from usermgmt_server.notifier.resources import (
    PipelineInfo,
    ensure_email_identity,
    ensure_notification_pipeline,
)
from usermgmt_server.notifier.senders import (
    DeliveryFailed,
    Senders,
    SesEmailSender,
    SnsSmsSender,
)
from usermgmt_server.notifier.templates import EmailMessage, SmsMessage, render
from usermgmt_server.notifier.worker import NotifierWorker, Outcome

__all__ = [
    "ClaimResult",
    "DeliveryFailed",
    "EmailMessage",
    "Notification",
    "NotificationMarkers",
    "NotifierWorker",
    "Outcome",
    "PipelineInfo",
    "PoisonMessage",
    "Senders",
    "SesEmailSender",
    "SmsMessage",
    "SnsSmsSender",
    "ensure_email_identity",
    "ensure_notification_pipeline",
    "parse_body",
    "render",
    "run_embedded_notifier",
]
