"""Bulk import: rows checked like registrations, existing accounts left alone, several rows at a
time so that hashing and storage overlap.

The stream is read in batches of ``LOOKUP_BATCH`` rows. The usernames and addresses of a batch
are checked, then one storage lookup (``UserRepository.holders``) finds which of them are taken.
A row whose username and address both belong to one account is EXISTS and changes nothing,
which makes a second run of the same rows harmless; a row that collides with another account
is INVALID. The other rows are checked in full (password policy, hash format, roles) and
created, at most ``concurrency`` at a time:
reading the stream waits while that many are under way, so a fast sender is slowed down (gRPC
flow control) instead of filling memory. Each account is written as a registration writes one:
the account, its guards and its ``registered`` event, plus for an invitation a password-reset
code and the notification that sends it, in one transaction. A row that loses a race with
another creation of its username or address is settled like one that found it taken.

Failures of storage or of the hashing pool make the rows they hit FAILED (sending them again may
succeed); nothing a row contains stops the others.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

from usermgmt_server.domain import events
from usermgmt_server.domain.accounts import new_account
from usermgmt_server.domain.errors import (
    EmailTaken,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    ServerBusy,
    StorageUnavailable,
    UsermgmtError,
    UsernameTaken,
)
from usermgmt_server.domain.identifiers import identifier_key, normalize_password
from usermgmt_server.domain.model import NO_PASSWORD, CodePurpose, Holders, Principal
from usermgmt_server.domain.password_policy import PASSWORD_REQUIRED, PasswordPolicy
from usermgmt_server.domain.ports import (
    Clock,
    EventRelay,
    IdGenerator,
    PasswordHasher,
    UserRepository,
)
from usermgmt_server.domain.validation import (
    check_display_name,
    check_email,
    check_roles,
    check_username,
)
from usermgmt_server.domain.verification import CodeService

logger = logging.getLogger(__name__)

# Bounds the response too: a row's result (violations included) stays within a few KB, and
# gRPC clients take responses of up to 4 MB by default.
MAX_IMPORT_ROWS = 1_000
MESSAGE_MAX = 300
LOOKUP_BATCH = 50
PASSWORD_HASH_MAX = 1024
TOO_MANY_ROWS = "TOO_MANY_ROWS"
UNSUPPORTED_PASSWORD_HASH = "UNSUPPORTED_PASSWORD_HASH"


class ImportOutcome(enum.Enum):
    """What became of one row."""

    CREATED = "CREATED"
    EXISTS = "EXISTS"
    INVALID = "INVALID"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One account to import, signing in with ``password``, with ``password_hash`` (made by
    another system) or, for an ``invite``, with a password set through a reset code. At most
    one of the three is given; none is reported as a bad row."""

    username: str
    email: str
    display_name: str = ""
    roles: tuple[str, ...] = ()
    email_verified: bool = False
    password: str | None = field(default=None, repr=False)
    password_hash: str | None = field(default=None, repr=False)
    invite: bool = False

    def __post_init__(self) -> None:
        if (self.password is not None) + (self.password_hash is not None) + self.invite > 1:
            raise ValueError("a row has one of password, password_hash or invite")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The outcome of the row at ``index`` (from 0, in stream order).

    CREATED and EXISTS name the account in ``user_id``; INVALID and FAILED say why in
    ``reason`` (an error reason such as ``USERNAME_TAKEN``), ``message`` and, for bad fields,
    ``violations``.
    """

    index: int
    outcome: ImportOutcome
    user_id: str = ""
    reason: str = ""
    message: str = ""
    violations: tuple[FieldViolation, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The result of every row, in stream order."""

    results: list[ImportResult]

    def count(self, outcome: ImportOutcome) -> int:
        """How many rows had ``outcome``."""
        return sum(1 for result in self.results if result.outcome is outcome)


class UserImporter:
    """Creates accounts from a stream of rows for an administrator (see the module docstring).

    ``concurrency`` bounds the rows being hashed and written at once; keep it below the hashing
    pool's queue so that sign-ins still find room during an import.
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        passwords: PasswordHasher,
        policy: PasswordPolicy,
        codes: CodeService,
        clock: Clock,
        ids: IdGenerator,
        relay: EventRelay,
        concurrency: int,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._users = users
        self._passwords = passwords
        self._policy = policy
        self._codes = codes
        self._clock = clock
        self._ids = ids
        self._relay = relay
        self._concurrency = concurrency

    async def import_users(self, actor: Principal, rows: AsyncIterable[ImportRow]) -> ImportReport:
        """Import every row of ``rows``; raises ``InvalidArgument`` (after the first
        ``MAX_IMPORT_ROWS`` rows are done) when the stream holds more."""
        if not actor.is_admin:
            raise PermissionDenied("administrators only")
        results: dict[int, ImportResult] = {}
        slots = asyncio.Semaphore(self._concurrency)
        read = 0
        async with asyncio.TaskGroup() as group, aclosing(_batches(rows)) as batches:
            async for batch in batches:
                numbered = list(enumerate(batch[: MAX_IMPORT_ROWS - read], start=read))
                read += len(batch)
                for index, row in await self._settle_batch(numbered, results):
                    await slots.acquire()
                    task = group.create_task(self._create(index, row, results))
                    task.add_done_callback(lambda _: slots.release())
                if read > MAX_IMPORT_ROWS:
                    break
        report = ImportReport([results[index] for index in range(len(results))])
        counts = Counter(f"{result.outcome.value.lower()}_rows" for result in report.results)
        logger.info("users imported", extra=dict(counts))
        if read > MAX_IMPORT_ROWS:
            raise InvalidArgument(
                [FieldViolation("user", f"at most {MAX_IMPORT_ROWS} rows per call", TOO_MANY_ROWS)]
            )
        return report

    async def _settle_batch(
        self, batch: list[tuple[int, ImportRow]], results: dict[int, ImportResult]
    ) -> list[tuple[int, ImportRow]]:
        """Record the results of the batch's bad and existing rows; the rows to create.

        The rest of a row is checked only when its account does not exist yet, so a second run
        reports EXISTS even if, say, the password policy changed in between.
        """
        named = []
        for index, row in batch:
            violations = check_username(row.username, "user.username")
            # Without an address the username alone finds the account; a bad row reports both.
            if row.email or violations:
                violations += check_email(row.email, "user.email")
            if violations:
                results[index] = _invalid(index, InvalidArgument(violations))
            else:
                named.append((index, row))
        try:
            holders = await self._holders([row for _, row in named])
        except StorageUnavailable as error:
            results.update({index: _failed(index, error) for index, _ in named})
            return []
        new = []
        for index, row in named:
            settled = _settled(index, row, holders)
            violations = self._violations(row) if settled is None else []
            if violations:
                settled = _invalid(index, InvalidArgument(violations))
            if settled is None:
                new.append((index, row))
            else:
                results[index] = settled
        return new

    async def _create(self, index: int, row: ImportRow, results: dict[int, ImportResult]) -> None:
        try:
            results[index] = await self._create_account(index, row)
        except (UsernameTaken, EmailTaken) as taken:
            results[index] = await self._after_race(index, row, taken)
        except (StorageUnavailable, ServerBusy) as error:
            results[index] = _failed(index, error)

    async def _create_account(self, index: int, row: ImportRow) -> ImportResult:
        user = new_account(
            user_id=self._ids.new_user_id(),
            now=self._clock.now(),
            username=row.username,
            email=row.email,
            display_name=row.display_name,
            roles=tuple(dict.fromkeys(row.roles)),
            password_hash=await self._password_hash(row),
            email_verified=row.email_verified,
        )
        written = [events.registered(user, user.create_time)]
        code = None
        if row.invite:
            prepared = self._codes.prepare(user, CodePurpose.RESET_PASSWORD, user.email)
            code = prepared.code
            written.append(prepared.notification)
        await self._users.create(user, events=written, code=code)
        self._relay.committed(written)
        return ImportResult(index, ImportOutcome.CREATED, user_id=user.user_id)

    async def _after_race(self, index: int, row: ImportRow, taken: UsermgmtError) -> ImportResult:
        """Settle a row whose username or address was taken between the lookup and the write."""
        try:
            settled = _settled(index, row, await self._holders([row]))
        except StorageUnavailable as error:
            return _failed(index, error)
        if settled is not None:
            return settled
        # The account that held it is gone again: the row may well succeed when sent again.
        return ImportResult(
            index,
            ImportOutcome.FAILED,
            reason=taken.reason,
            message=f"{taken.message} by an account that changed meanwhile; send the row again",
        )

    async def _holders(self, rows: list[ImportRow]) -> Holders:
        return await self._users.holders(
            username_keys=[identifier_key(row.username) for row in rows],
            email_keys=[identifier_key(row.email) for row in rows if row.email],
        )

    async def _password_hash(self, row: ImportRow) -> str:
        if row.password is not None:
            return await self._passwords.hash(normalize_password(row.password))
        if row.password_hash is not None:
            return row.password_hash
        return NO_PASSWORD

    def _violations(self, row: ImportRow) -> list[FieldViolation]:
        """What is wrong with a row to create, besides a malformed username or address."""
        found = (
            (check_email(row.email, "user.email") if not row.email else [])
            + check_display_name(row.display_name, "user.display_name")
            + check_roles(list(row.roles), "user.roles")
        )
        if row.password is not None:
            found += self._policy.violations(
                row.password, field="user.password", username=row.username, email=row.email
            )
        elif row.password_hash is not None:
            found += self._hash_violations(row.password_hash)
        elif not row.invite:
            found.append(
                FieldViolation(
                    "user.password",
                    "is required, unless password_hash or invite is given",
                    PASSWORD_REQUIRED,
                )
            )
        return found

    def _hash_violations(self, password_hash: str) -> list[FieldViolation]:
        if len(password_hash) > PASSWORD_HASH_MAX:
            problem: str | None = f"must be at most {PASSWORD_HASH_MAX} characters"
        else:
            problem = self._passwords.check_imported(password_hash)
        if problem is None:
            return []
        return [FieldViolation("user.password_hash", problem, UNSUPPORTED_PASSWORD_HASH)]


def _settled(index: int, row: ImportRow, holders: Holders) -> ImportResult | None:
    """EXISTS or INVALID when the row's username or address is taken; ``None`` when both are
    free. A row without an address (as exported for an account without one) is matched by its
    username alone."""
    by_username = holders.usernames.get(identifier_key(row.username))
    by_email = holders.emails.get(identifier_key(row.email)) if row.email else by_username
    if by_username is None and by_email is None:
        return None
    if by_username is not None and by_username == by_email:
        return ImportResult(index, ImportOutcome.EXISTS, user_id=by_username)
    if by_username is not None:
        return _invalid(
            index,
            UsernameTaken(),
            FieldViolation("user.username", "belongs to an account with another e-mail address"),
        )
    return _invalid(
        index, EmailTaken(), FieldViolation("user.email", "belongs to an account with another name")
    )


def _invalid(index: int, error: UsermgmtError, *violations: FieldViolation) -> ImportResult:
    if isinstance(error, InvalidArgument):
        violations = (*error.violations, *violations)
    return ImportResult(
        index,
        ImportOutcome.INVALID,
        reason=error.reason,
        message=_brief(error.message),
        violations=tuple(violations),
    )


def _brief(message: str) -> str:
    """``message`` cut to ``MESSAGE_MAX`` characters (the violations carry every detail)."""
    return message if len(message) <= MESSAGE_MAX else message[: MESSAGE_MAX - 1] + "…"


def _failed(index: int, error: UsermgmtError) -> ImportResult:
    return ImportResult(index, ImportOutcome.FAILED, reason=error.reason, message=error.message)


async def _batches(rows: AsyncIterable[ImportRow]) -> AsyncIterator[list[ImportRow]]:
    """``rows`` in lists of ``LOOKUP_BATCH`` (the last may be shorter)."""
    batch: list[ImportRow] = []
    async for row in rows:
        batch.append(row)
        if len(batch) == LOOKUP_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
