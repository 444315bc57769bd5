"""The CLI's stored sessions: one file readable only by the user, written atomically."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

FORMAT_VERSION = 1
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def default_path() -> Path:
    """``$XDG_CONFIG_HOME/usermgmt/credentials.json`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "usermgmt" / "credentials.json"


@dataclass(frozen=True, slots=True)
class StoredSession:
    """The tokens of one signed-in account at one target."""

    access_token: str
    refresh_token: str | None
    user_id: str = ""
    username: str = ""
    saved_at: str = ""


class CredentialsFile:
    """Sessions by target in one JSON file (mode 0600, in a 0700 directory).

    Every change rewrites the file through a temporary file and an atomic rename, under an
    advisory lock, so a crash or two commands at once never leave a half-written file.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self._depth = 0

    def load(self, target: str) -> StoredSession | None:
        """The session stored for ``target``, or ``None``."""
        entry = self._read().get("sessions", {}).get(target)
        if not isinstance(entry, dict) or not isinstance(entry.get("access_token"), str):
            return None
        return StoredSession(
            access_token=entry["access_token"],
            refresh_token=entry.get("refresh_token") or None,
            user_id=str(entry.get("user_id", "")),
            username=str(entry.get("username", "")),
            saved_at=str(entry.get("saved_at", "")),
        )

    def save(self, target: str, session: StoredSession) -> None:
        """Store ``session`` for ``target`` (replacing the previous one)."""
        stamped = StoredSession(
            **{**asdict(session), "saved_at": datetime.now(UTC).isoformat(timespec="seconds")}
        )
        with self._locked():
            document = self._read()
            document.setdefault("sessions", {})[target] = asdict(stamped)
            self._write(document)

    def remove(self, target: str) -> bool:
        """Forget the session of ``target``; whether there was one."""
        with self._locked():
            document = self._read()
            found = document.get("sessions", {}).pop(target, None) is not None
            if found:
                self._write(document)
            return found

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": FORMAT_VERSION, "sessions": {}}
        try:
            document = json.loads(text)
        except ValueError:
            message = f"{self.path} is not valid JSON; remove it and sign in again"
            raise CredentialsError(message) from None
        if not isinstance(document, dict) or not isinstance(document.get("sessions", {}), dict):
            raise CredentialsError(f"{self.path} has an unknown layout; remove it and sign in")
        return document

    def _write(self, document: dict[str, Any]) -> None:
        document["version"] = FORMAT_VERSION
        directory = self.path.parent
        handle, temporary = tempfile.mkstemp(prefix=".credentials-", dir=directory)
        try:
            os.fchmod(handle, FILE_MODE)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, indent=2, sort_keys=True)
                stream.write("\n")
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_directory(directory)

    def shared(self, target: str) -> SharedSession:
        """The session of ``target`` as ``SharedTokens``, so that commands running at once
        renew it only once."""
        return SharedSession(self, target)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Re-entrant: a renewal holds the lock while its new tokens are saved.
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        descriptor = self._acquire()
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            os.close(descriptor)

    def _acquire(self) -> int:
        """Open the lock file and wait for the exclusive lock; returns its descriptor."""
        self._prepare_directory()
        lock_path = self.path.with_name(self.path.name + ".lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except BaseException:
                os.close(descriptor)
                raise
        return descriptor

    def _prepare_directory(self) -> None:
        directory = self.path.parent
        directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        # The directory is the CLI's own: keep others out even if it was made by hand.
        if stat.S_IMODE(directory.stat().st_mode) != DIRECTORY_MODE:
            directory.chmod(DIRECTORY_MODE)


class SharedSession:
    """``usermgmt.SharedTokens`` over one target's entry of a credentials file."""

    def __init__(self, credentials: CredentialsFile, target: str) -> None:
        self._credentials = credentials
        self._target = target

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[tuple[str, str | None] | None]:
        """Hold the file's lock (waiting for it off the event loop) and yield the stored
        tokens of the target."""
        credentials = self._credentials
        descriptor = await asyncio.to_thread(credentials._acquire)
        credentials._depth += 1
        try:
            stored = credentials.load(self._target)
            yield None if stored is None else (stored.access_token, stored.refresh_token)
        finally:
            credentials._depth -= 1
            os.close(descriptor)


class CredentialsError(Exception):
    """The credentials file cannot be used."""


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
