"""The notification a code becomes: a CloudEvents 1.0 envelope around the delivery request."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from usermgmt_server.domain.model import CodePurpose, OneTimeCode, User

SOURCE = "usermgmt"
SCHEMA_VERSION = "1"
EVENT_TYPES = {
    CodePurpose.VERIFY_EMAIL: "usermgmt.notification.verification_code.v1",
    CodePurpose.RESET_PASSWORD: "usermgmt.notification.password_reset_code.v1",
}


def code_notification(
    user: User, code: OneTimeCode, plain_code: str, now: datetime
) -> dict[str, Any]:
    """A CloudEvents envelope asking the notifier to deliver ``plain_code`` to ``code.target``."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": SOURCE,
        "type": EVENT_TYPES[code.purpose],
        "time": now.isoformat(),
        "subject": user.user_id,
        "datacontenttype": "application/json",
        "data": {
            "user_id": user.user_id,
            "username": user.username,
            "channel": "email",
            "recipient": code.target,
            "code": plain_code,
            "expires_at": code.expires_at.isoformat(),
        },
    }
