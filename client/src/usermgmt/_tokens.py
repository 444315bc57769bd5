"""Reading (not verifying) the claims of an access token, to schedule refreshes."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def unverified_claims(token: str) -> dict[str, Any]:
    """The JWT payload of ``token`` without any signature check; ``{}`` if it is not a JWT.

    Only for the holder's own bookkeeping (when to refresh, which account): anything that
    grants access must verify the signature (``usermgmt.verify``).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1]
    try:
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def expiry(token: str) -> float | None:
    """The ``exp`` claim of ``token`` (seconds since the epoch), or ``None``."""
    value = unverified_claims(token).get("exp")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
