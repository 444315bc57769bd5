"""AWS for the bulk commands (S3 objects, SQS queues), through boto3 from the ``aws`` extra.

boto3 takes its region, credentials and endpoint from the usual places; ``AWS_ENDPOINT_URL``
points it at another endpoint (a local emulator, for instance).
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

S3_SCHEME = "s3://"


class MissingExtra(Exception):
    """An optional dependency is not installed; the message says which extra brings it."""


class AwsError(Exception):
    """An AWS call failed; the message names the resource and AWS's error code."""


def client(service: str) -> Any:
    """A boto3 client of ``service`` in ``AWS_REGION`` (else boto3's own default region);
    ``MissingExtra`` without boto3, ``AwsError`` when boto3 cannot make one (no region)."""
    try:
        import boto3
    except ImportError:
        raise MissingExtra(
            f"{service.upper()} access needs boto3: pip install 'usermgmt-client[aws]'"
        ) from None
    try:
        return boto3.client(service, region_name=os.environ.get("AWS_REGION") or None)
    except Exception as error:
        raise describe(service.upper(), error) from error


def describe(resource: str, error: Exception) -> AwsError:
    """An ``AwsError`` for a failed call on ``resource``."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        details = response.get("Error", {})
        text = f"{details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
    else:
        text = str(error)
    return AwsError(f"{resource}: {text}")


@dataclass
class Opened:
    """A byte stream being read, its size when known, and how much of it was read so far."""

    stream: io.BufferedReader
    size: int | None
    counter: _CountingReader

    @property
    def consumed(self) -> int:
        """Bytes read from the source so far."""
        return self.counter.count


def open_source(source: str) -> Opened:
    """Open a local file, standard input (``-``) or an ``s3://bucket/key`` object for reading,
    counting the bytes read."""
    if source.startswith(S3_SCHEME):
        raw, size = _open_s3(source)
    elif source == "-":
        raw, size = sys.stdin.buffer, None
    else:
        raw = open(source, "rb")  # noqa: SIM115 - closed with the Opened stream
        size = os.fstat(raw.fileno()).st_size
    counter = _CountingReader(raw)
    return Opened(io.BufferedReader(counter), size, counter)


def _open_s3(url: str) -> tuple[Any, int | None]:
    parts = urlsplit(url)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise AwsError(f"{url}: expected s3://bucket/key")
    s3 = client("s3")
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except Exception as error:
        raise describe(url, error) from error
    return response["Body"], response.get("ContentLength")


class _CountingReader(io.RawIOBase):
    """A raw stream over anything with ``read(n)``, counting the bytes it delivers."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)

    def close(self) -> None:
        try:
            self._source.close()
        finally:
            super().close()
