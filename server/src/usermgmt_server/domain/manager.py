"""The user manager: every account rule lives here, behind the ports it is given."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace

from usermgmt_server.domain import events
from usermgmt_server.domain.accounts import new_account
from usermgmt_server.domain.errors import (
    EmailTaken,
    EtagMismatch,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    RequestIdReused,
    UsernameTaken,
    UserNotFound,
)
from usermgmt_server.domain.filters import parse_filter
from usermgmt_server.domain.identifiers import identifier_key, normalize_password
from usermgmt_server.domain.lookup import ME, load_visible
from usermgmt_server.domain.model import (
    ADMIN_ROLE,
    CodePurpose,
    IdempotencyRecord,
    ListedUsers,
    NotificationChannel,
    Principal,
    User,
    UserFilter,
    UserState,
)
from usermgmt_server.domain.password_policy import PasswordPolicy
from usermgmt_server.domain.ports import (
    Clock,
    DuplicateRequest,
    EventRelay,
    IdGenerator,
    KeyedHasher,
    PageTokenCodec,
    PasswordHasher,
    UserRepository,
)
from usermgmt_server.domain.validation import (
    check_display_name,
    check_email,
    check_phone_number,
    check_request_id,
    check_roles,
    check_username,
    raise_if_any,
)
from usermgmt_server.domain.verification import CodeService

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
SELF_EDITABLE_PATHS = frozenset(
    {"display_name", "email", "username", "notification_channel", "phone_number"}
)
ADMIN_EDITABLE_PATHS = SELF_EDITABLE_PATHS | {"roles", "state"}
IMMUTABLE_PATHS = frozenset({"user_id", "email_verified", "create_time", "update_time", "etag"})
# Updates without an etag re-read and re-apply on a concurrent change this many times.
_UNGUARDED_UPDATE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Registration:
    """The fields of a Register call."""

    username: str
    email: str
    password: str
    display_name: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class UserPatch:
    """New values for an update; only the paths named in the mask are applied."""

    username: str = ""
    email: str = ""
    display_name: str = ""
    roles: tuple[str, ...] = ()
    state: UserState | None = None
    notification_channel: NotificationChannel | None = None
    phone_number: str = ""


class UserManager:
    """Owns the account rules: registration, sign-in, reads, updates, deletion and listing."""

    def __init__(
        self,
        *,
        users: UserRepository,
        passwords: PasswordHasher,
        policy: PasswordPolicy,
        codes: CodeService,
        page_tokens: PageTokenCodec,
        keyed_hasher: KeyedHasher,
        clock: Clock,
        ids: IdGenerator,
        relay: EventRelay,
        require_email_verification: bool = True,
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._policy = policy
        self._codes = codes
        self._page_tokens = page_tokens
        self._keyed_hasher = keyed_hasher
        self._clock = clock
        self._ids = ids
        self._relay = relay
        self._require_verification = require_email_verification

    # -- registration -------------------------------------------------------------------------

    async def register(self, registration: Registration) -> User:
        """Create an account; a replayed ``request_id`` returns the account it created first."""
        self._check_registration(registration)
        idempotency = None
        if registration.request_id:
            idempotency = IdempotencyRecord(
                key=f"register:{registration.request_id}",
                fingerprint=self._fingerprint(registration),
                user_id="",
            )
            replayed = await self._replay(idempotency)
            if replayed is not None:
                return replayed
        user = await self._new_user(
            username=registration.username,
            email=registration.email,
            password=registration.password,
            display_name=registration.display_name,
            roles=(),
            state=(
                UserState.PENDING_VERIFICATION if self._require_verification else UserState.ACTIVE
            ),
        )
        if idempotency is not None:
            idempotency = replace(idempotency, user_id=user.user_id)
        written = [events.registered(user, user.create_time)]
        code = None
        if self._require_verification:
            prepared = self._codes.prepare(user, CodePurpose.VERIFY_EMAIL, user.email)
            code = prepared.code
            written.append(prepared.notification)
        else:
            greeting = events.welcome(user, user.create_time)
            written += [greeting] if greeting else []
        try:
            await self._users.create(user, idempotency, events=written, code=code)
        except DuplicateRequest:
            assert idempotency is not None
            replayed = await self._replay(idempotency)
            if replayed is None:
                raise UserNotFound() from None
            return replayed
        self._relay.committed(written)
        logger.info("user registered", extra={"user_id": user.user_id})
        return user

    async def ensure_admin(self, username: str, password: str, email: str = "") -> User:
        """Create the bootstrap administrator unless an account with that username exists.

        Safe when several instances start at once: the storage guards let one create win and
        the others find the account.
        """
        violations = check_username(username, "bootstrap_admin_username")
        violations += self._policy.violations(
            password, field="bootstrap_admin_password", username=username, email=email
        )
        if email:
            violations += check_email(email, "bootstrap_admin_email")
        raise_if_any(violations)
        existing = await self._users.find_by_username(identifier_key(username))
        if existing is not None:
            if not existing.is_admin:
                logger.warning(
                    "bootstrap username belongs to an account without the admin role; "
                    "leaving it unchanged",
                    extra={"user_id": existing.user_id},
                )
            return existing
        admin = await self._new_user(
            username=username,
            email=email,
            password=password,
            display_name=username,
            roles=(ADMIN_ROLE,),
            email_verified=bool(email),
        )
        written = [events.registered(admin, admin.create_time)]
        try:
            await self._users.create(admin, events=written)
        except UsernameTaken:
            existing = await self._users.find_by_username(identifier_key(username))
            if existing is None:
                raise
            return existing
        self._relay.committed(written)
        logger.info("bootstrap administrator created", extra={"user_id": admin.user_id})
        return admin

    # -- reads --------------------------------------------------------------------------------

    async def get_user(self, actor: Principal, user_id: str) -> User:
        """The account ``user_id`` (``me`` = the caller), if the caller may see it."""
        return await load_visible(self._users, actor, user_id, "user_id")

    async def list_users(
        self, actor: Principal, *, filter_text: str, page_size: int, page_token: str
    ) -> ListedUsers:
        """One page of accounts matching the filter; administrators only."""
        self._require_admin(actor)
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(
                [FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")]
            )
        user_filter = parse_filter(filter_text)
        binding = user_filter.canonical
        cursor = self._page_tokens.decode(page_token, binding) if page_token else None
        if user_filter.email_key is not None or user_filter.username_key is not None:
            return ListedUsers(users=await self._lookup_filtered(user_filter), next_page_token="")
        page = await self._users.list_page(
            state=user_filter.state, limit=page_size or DEFAULT_PAGE_SIZE, cursor=cursor
        )
        next_token = self._page_tokens.encode(page.next_cursor, binding) if page.next_cursor else ""
        return ListedUsers(users=page.users, next_page_token=next_token)

    # -- changes ------------------------------------------------------------------------------

    async def update_user(
        self,
        actor: Principal,
        user_id: str,
        *,
        etag: str,
        paths: list[str],
        patch: UserPatch,
    ) -> User:
        """Apply the masked fields of ``patch``; a stale ``etag`` raises ``EtagMismatch``."""
        paths = self._check_update(actor, paths, patch)
        for attempt in range(_UNGUARDED_UPDATE_ATTEMPTS):
            current = await load_visible(self._users, actor, user_id, "user.user_id")
            if etag and etag != current.etag:
                raise EtagMismatch()
            verify_email = self._require_verification and not actor.is_admin
            updated = self._apply(current, paths, patch, verify_email=verify_email)
            if updated == current:
                return current
            new_address = updated.pending_email != current.pending_email and updated.pending_email
            if new_address and await self._users.find_by_email(identifier_key(new_address)):
                raise EmailTaken()
            written = self._update_events(current, updated, paths)
            code = None
            if new_address:
                prepared = self._codes.prepare(updated, CodePurpose.VERIFY_EMAIL, new_address)
                code = prepared.code
                written.append(prepared.notification)
            try:
                await self._users.update(current, updated, events=written, code=code)
            except EtagMismatch:
                if etag or attempt == _UNGUARDED_UPDATE_ATTEMPTS - 1:
                    raise
                continue
            self._relay.committed(written)
            logger.info("user updated", extra={"user_id": updated.user_id, "paths": paths})
            return updated
        raise EtagMismatch()  # pragma: no cover - the loop always returns or raises

    async def delete_user(self, actor: Principal, user_id: str, *, etag: str) -> None:
        """Delete the account and free its username and e-mail address."""
        current = await load_visible(self._users, actor, user_id, "user_id")
        if etag and etag != current.etag:
            raise EtagMismatch()
        written = [events.deleted(current, self._clock.now())]
        await self._users.delete(current, events=written)
        self._relay.committed(written)
        logger.info("user deleted", extra={"user_id": current.user_id})

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _update_events(current: User, updated: User, paths: list[str]) -> list[events.DomainEvent]:
        now = updated.update_time
        written = [events.updated(updated, paths, now)]
        if updated.state is UserState.DISABLED and current.state is not UserState.DISABLED:
            written.append(events.disabled(updated, now))
        elif current.state is UserState.DISABLED and updated.state is not UserState.DISABLED:
            written.append(events.enabled(updated, now))
        return written

    def _check_registration(self, registration: Registration) -> None:
        raise_if_any(
            check_username(registration.username, "username")
            + check_email(registration.email, "email")
            + self._policy.violations(
                registration.password,
                field="password",
                username=registration.username,
                email=registration.email,
            )
            + check_display_name(registration.display_name, "display_name")
            + check_request_id(registration.request_id, "request_id")
        )

    def _fingerprint(self, registration: Registration) -> str:
        payload = json.dumps(
            [
                registration.username,
                registration.email,
                normalize_password(registration.password),
                registration.display_name,
            ],
            ensure_ascii=False,
        )
        return self._keyed_hasher.digest("idempotency", payload.encode("utf-8"))

    async def _replay(self, idempotency: IdempotencyRecord) -> User | None:
        stored = await self._users.get_idempotency_record(idempotency.key)
        if stored is None:
            return None
        if stored.fingerprint != idempotency.fingerprint:
            raise RequestIdReused()
        user = await self._users.get(stored.user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def _new_user(
        self,
        *,
        username: str,
        email: str,
        password: str,
        display_name: str,
        roles: tuple[str, ...],
        email_verified: bool = False,
        state: UserState = UserState.ACTIVE,
    ) -> User:
        return new_account(
            user_id=self._ids.new_user_id(),
            now=self._clock.now(),
            username=username,
            email=email,
            display_name=display_name,
            roles=roles,
            password_hash=await self._passwords.hash(normalize_password(password)),
            email_verified=email_verified,
            state=state,
        )

    async def _lookup_filtered(self, user_filter: UserFilter) -> list[User]:
        user = None
        if user_filter.email_key is not None:
            user = await self._users.find_by_email(user_filter.email_key)
        if user_filter.username_key is not None:
            if user is None and user_filter.email_key is None:
                user = await self._users.find_by_username(user_filter.username_key)
            elif user is not None and user.username_key != user_filter.username_key:
                user = None
        if user is None or (user_filter.state is not None and user.state != user_filter.state):
            return []
        return [user]

    @staticmethod
    def _require_admin(actor: Principal) -> None:
        if not actor.is_admin:
            raise PermissionDenied("administrators only")

    def _check_update(self, actor: Principal, paths: list[str], patch: UserPatch) -> list[str]:
        if not paths:
            paths = self._implied_paths(patch)
            if not paths:
                raise InvalidArgument(
                    [FieldViolation("update_mask", "names no field and the user sets none")]
                )
        violations: list[FieldViolation] = []
        for index, path in enumerate(paths):
            field = f"update_mask.paths[{index}]"
            if path in IMMUTABLE_PATHS:
                violations.append(FieldViolation(field, f"{path!r} cannot be changed"))
            elif path not in ADMIN_EDITABLE_PATHS:
                violations.append(FieldViolation(field, f"unknown field {path!r}"))
            elif paths.index(path) != index:
                violations.append(FieldViolation(field, f"{path!r} is named twice"))
        raise_if_any(violations)
        if not actor.is_admin and not set(paths) <= SELF_EDITABLE_PATHS:
            raise PermissionDenied("only administrators may change roles or state")
        checks = {
            "username": lambda: check_username(patch.username, "user.username"),
            "email": lambda: check_email(patch.email, "user.email"),
            "display_name": lambda: check_display_name(patch.display_name, "user.display_name"),
            "roles": lambda: check_roles(list(patch.roles), "user.roles"),
            "state": lambda: (
                [FieldViolation("user.state", "must be a specific state")]
                if patch.state is None
                else []
            ),
            "notification_channel": lambda: (
                [FieldViolation("user.notification_channel", "must be a specific channel")]
                if patch.notification_channel is None
                else []
            ),
            "phone_number": lambda: check_phone_number(patch.phone_number, "user.phone_number"),
        }
        raise_if_any([violation for path in paths for violation in checks[path]()])
        return paths

    @staticmethod
    def _implied_paths(patch: UserPatch) -> list[str]:
        # AIP-134: without a mask, every populated field is updated.
        populated = {
            "username": bool(patch.username),
            "email": bool(patch.email),
            "display_name": bool(patch.display_name),
            "roles": bool(patch.roles),
            "state": patch.state is not None,
            "notification_channel": patch.notification_channel is not None,
            "phone_number": bool(patch.phone_number),
        }
        return [path for path, present in populated.items() if present]

    def _apply(
        self, current: User, paths: list[str], patch: UserPatch, *, verify_email: bool
    ) -> User:
        changes: dict[str, object] = {}
        if "username" in paths and patch.username != current.username:
            changes.update(username=patch.username, username_key=identifier_key(patch.username))
        if "email" in paths:
            changes.update(self._email_change(current, patch.email, verify_email=verify_email))
        if "display_name" in paths and patch.display_name != current.display_name:
            changes["display_name"] = patch.display_name
        if "roles" in paths:
            roles = tuple(dict.fromkeys(patch.roles))
            if roles != current.roles:
                changes["roles"] = roles
        if "state" in paths and patch.state is not current.state:
            changes["state"] = patch.state
        channel = patch.notification_channel
        if "notification_channel" in paths and channel not in (None, current.notification_channel):
            changes["notification_channel"] = channel
        if "phone_number" in paths and patch.phone_number != current.phone_number:
            changes["phone_number"] = patch.phone_number
        if not changes:
            return current
        now = self._clock.now()
        updated = replace(current, **changes, version=current.version + 1, update_time=now)
        if updated.state is UserState.DISABLED and current.state is not UserState.DISABLED:
            updated = replace(updated, tokens_valid_after=now)
        return updated

    @staticmethod
    def _email_change(current: User, email: str, *, verify_email: bool) -> dict[str, object]:
        email_key = identifier_key(email)
        if email_key == current.email_key:
            # Same address (maybe new spelling); a pending change is withdrawn.
            changes: dict[str, object] = {"pending_email": ""} if current.pending_email else {}
            if email != current.email:
                changes["email"] = email
            return changes
        if verify_email:
            # The old address stays in use until the new one is confirmed with a code.
            return {"pending_email": email} if email != current.pending_email else {}
        return {
            "email": email,
            "email_key": email_key,
            "email_verified": False,
            "pending_email": "",
        }


__all__ = ["ME", "Registration", "UserManager", "UserPatch"]
