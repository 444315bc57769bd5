"""Conversion between protobuf messages and domain values."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2

from usermgmt.v1 import auth_service_pb2, session_pb2, user_pb2, user_service_pb2
from usermgmt_server.domain.bulk_import import ImportOutcome, ImportReport, ImportRow
from usermgmt_server.domain.manager import UserPatch
from usermgmt_server.domain.model import NotificationChannel, SessionTokens, User, UserState

TOKEN_TYPE = "Bearer"

_STATE_TO_PROTO = {
    UserState.ACTIVE: user_pb2.USER_STATE_ACTIVE,
    UserState.PENDING_VERIFICATION: user_pb2.USER_STATE_PENDING_VERIFICATION,
    UserState.DISABLED: user_pb2.USER_STATE_DISABLED,
}
_STATE_FROM_PROTO = {number: state for state, number in _STATE_TO_PROTO.items()}
_CHANNEL_TO_PROTO = {
    NotificationChannel.EMAIL: user_pb2.NOTIFICATION_CHANNEL_EMAIL,
    NotificationChannel.SMS: user_pb2.NOTIFICATION_CHANNEL_SMS,
    NotificationChannel.NONE: user_pb2.NOTIFICATION_CHANNEL_NONE,
}
_CHANNEL_FROM_PROTO = {number: channel for channel, number in _CHANNEL_TO_PROTO.items()}
_OUTCOME_TO_PROTO = {
    ImportOutcome.CREATED: user_service_pb2.IMPORT_OUTCOME_CREATED,
    ImportOutcome.EXISTS: user_service_pb2.IMPORT_OUTCOME_EXISTS,
    ImportOutcome.INVALID: user_service_pb2.IMPORT_OUTCOME_INVALID,
    ImportOutcome.FAILED: user_service_pb2.IMPORT_OUTCOME_FAILED,
}


def user_to_proto(user: User) -> user_pb2.User:
    """The public view of an account: everything but the password hash."""
    return user_pb2.User(
        user_id=user.user_id,
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        state=_STATE_TO_PROTO[user.state],
        email_verified=user.email_verified,
        roles=list(user.roles),
        create_time=_timestamp(user.create_time),
        update_time=_timestamp(user.update_time),
        etag=user.etag,
        pending_email=user.pending_email,
        password_change_required=user.password_change_required,
        notification_channel=_CHANNEL_TO_PROTO[user.notification_channel],
        phone_number=user.phone_number,
    )


def session_to_proto(session: SessionTokens) -> session_pb2.Session:
    """The tokens of a session as the API returns them."""
    return session_pb2.Session(
        access_token=session.access_token.token,
        token_type=TOKEN_TYPE,
        expires_in=session.access_token.expires_in,
        refresh_token=session.refresh_token,
        refresh_expires_in=session.refresh_expires_in,
    )


def jwks_to_proto(jwks: dict[str, list[dict[str, str]]]) -> auth_service_pb2.GetJwksResponse:
    """A JWK set (RFC 7517 dict) as the API returns it."""
    fields = ("kty", "crv", "x", "y", "kid", "use", "alg")
    return auth_service_pb2.GetJwksResponse(
        keys=[
            auth_service_pb2.Jwk(**{name: key.get(name, "") for name in fields})
            for key in jwks["keys"]
        ]
    )


def patch_from_proto(user: user_pb2.User) -> UserPatch:
    """The new values an UpdateUserRequest carries (unknown enum numbers read as unset)."""
    return UserPatch(
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        roles=tuple(user.roles),
        state=_STATE_FROM_PROTO.get(user.state),
        notification_channel=_CHANNEL_FROM_PROTO.get(user.notification_channel),
        phone_number=user.phone_number,
    )


def update_paths(request: user_service_pb2.UpdateUserRequest) -> list[str]:
    """The field-mask paths of an UpdateUserRequest, as sent."""
    return list(request.update_mask.paths)


def import_row_from_proto(user: user_service_pb2.ImportedUser) -> ImportRow:
    """The row an ImportUsersRequest carries; the ``credential`` oneof picks what is set."""
    credential = user.WhichOneof("credential")
    return ImportRow(
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        roles=tuple(user.roles),
        email_verified=user.email_verified,
        password=user.password if credential == "password" else None,
        password_hash=user.password_hash if credential == "password_hash" else None,
        invite=credential == "invite",
    )


def import_response(report: ImportReport) -> user_service_pb2.ImportUsersResponse:
    """The ImportUsersResponse of a finished import: every row's result and the counts."""
    violation = user_service_pb2.ImportUserResult.FieldViolation
    return user_service_pb2.ImportUsersResponse(
        results=[
            user_service_pb2.ImportUserResult(
                index=result.index,
                outcome=_OUTCOME_TO_PROTO[result.outcome],
                user_id=result.user_id,
                reason=result.reason,
                message=result.message,
                field_violations=[
                    violation(field=v.field, description=v.description, reason=v.reason)
                    for v in result.violations
                ],
            )
            for result in report.results
        ],
        created_count=report.count(ImportOutcome.CREATED),
        exists_count=report.count(ImportOutcome.EXISTS),
        invalid_count=report.count(ImportOutcome.INVALID),
        failed_count=report.count(ImportOutcome.FAILED),
    )


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp
