"""Domain events as CloudEvents 1.0 JSON, with the SNS message attributes subscribers filter on."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from usermgmt_server.domain.events import SEALED_CODE, DomainEvent
from usermgmt_server.domain.ports import CodeSealer

SOURCE = "usermgmt"
SCHEMA_VERSION = "1"


def opened(event: DomainEvent, sealer: CodeSealer) -> DomainEvent:
    """``event`` as delivered: a sealed code is replaced by the code itself (the notifier needs
    it; SNS and SQS encrypt it at rest)."""
    sealed = event.data.get(SEALED_CODE)
    if not isinstance(sealed, str):
        return event
    data = {key: value for key, value in event.data.items() if key != SEALED_CODE}
    data["code"] = sealer.unseal(sealed)
    return replace(event, data=data)


def to_cloudevent(event: DomainEvent) -> dict[str, Any]:
    """The CloudEvents 1.0 structured form of ``event``."""
    return {
        "specversion": "1.0",
        "id": event.event_id,
        "source": SOURCE,
        "type": event.type,
        "time": event.time.isoformat(),
        "subject": event.subject,
        "datacontenttype": "application/json",
        "data": dict(event.data),
    }


def message_body(event: DomainEvent) -> str:
    """The SNS message body: the CloudEvent as compact JSON."""
    return json.dumps(to_cloudevent(event), separators=(",", ":"), sort_keys=True)


def message_attributes(event: DomainEvent) -> dict[str, dict[str, str]]:
    """SNS message attributes for filter policies."""
    return {
        "event_type": {"DataType": "String", "StringValue": event.type},
        "event_id": {"DataType": "String", "StringValue": event.event_id},
        "schema_version": {"DataType": "String", "StringValue": SCHEMA_VERSION},
    }
