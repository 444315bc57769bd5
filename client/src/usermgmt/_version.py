"""The distribution's version, as installed."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("usermgmt-client")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0+unknown"

USER_AGENT = f"usermgmt-client-python/{VERSION}"
