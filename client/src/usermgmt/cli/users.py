"""Commands on accounts: ``me``, ``get``, ``update``, ``delete``, ``list``."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import Any

from usermgmt.cli._app import Commands, Context, UsageError
from usermgmt.cli._output import (
    TABLE_COLUMNS,
    TableWriter,
    user_dict,
    user_row,
    write_json,
    write_json_array,
    write_user,
)
from usermgmt.v1 import user_pb2


def register(commands: Commands) -> None:
    """Add the account commands."""
    me = commands.add("me", _me, help="show the signed-in account", signed_in=True)
    _json_flag(me)

    get = commands.add("get", _get, help="show an account (administrators: any)", signed_in=True)
    get.add_argument("user_id", help='account id, or "me"')
    _json_flag(get)

    update = commands.add(
        "update",
        _update,
        help="change fields of an account",
        description="Change the given fields of an account (default: your own); fields not "
        'given stay as they are, an empty value clears one (--phone-number "").',
        signed_in=True,
    )
    update.add_argument("user_id", nargs="?", default="me", help='account id (default "me")')
    update.add_argument("--display-name")
    update.add_argument("--email", help="new address (verified by a code unless admin)")
    update.add_argument("--username")
    update.add_argument("--phone-number", help="E.164, e.g. +447700900123")
    update.add_argument("--notification-channel", choices=("email", "sms", "none"))
    update.add_argument(
        "--roles", help='comma-separated roles, replacing the current ones (administrators); ""'
    )
    update.add_argument("--state", choices=("active", "disabled"), help="administrators only")
    update.add_argument("--etag", default="", help="refuse the change if the account changed")
    _json_flag(update)

    delete = commands.add(
        "delete",
        _delete,
        help="delete an account",
        description="Delete an account (default: your own). Asks for confirmation at a "
        "terminal; elsewhere --yes is required.",
        signed_in=True,
    )
    delete.add_argument("user_id", nargs="?", default="me", help='account id (default "me")')
    delete.add_argument("--etag", default="", help="delete only if the account is unchanged")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    listing = commands.add(
        "list",
        _list,
        help="list accounts, following every page (administrators)",
        signed_in=True,
    )
    listing.add_argument(
        "--filter", default="", help='e.g. "state = USER_STATE_ACTIVE", \'email = "a@b.c"\''
    )
    listing.add_argument(
        "--page-size", type=int, default=100, help="users per call (default %(default)s)"
    )
    listing.add_argument("--limit", type=int, help="stop after this many users")
    _json_flag(listing, "print a JSON array of users")


def _json_flag(parser: argparse.ArgumentParser, help: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=help)


def _show(context: Context, args: argparse.Namespace, user: user_pb2.User) -> None:
    if args.json:
        write_json(context.stdout, user_dict(user))
    else:
        write_user(context.stdout, user)


async def _me(context: Context, args: argparse.Namespace) -> int | None:
    async with context.client(signed_in=True) as client:
        user = await client.users.get("me")
    _show(context, args, user)
    return None


async def _get(context: Context, args: argparse.Namespace) -> int | None:
    async with context.client(signed_in=True) as client:
        user = await client.users.get(args.user_id)
    _show(context, args, user)
    return None


async def _update(context: Context, args: argparse.Namespace) -> int | None:
    fields: dict[str, Any] = {
        name: value
        for name, value in (
            ("display_name", args.display_name),
            ("email", args.email),
            ("username", args.username),
            ("phone_number", args.phone_number),
            ("notification_channel", args.notification_channel),
            ("state", args.state),
        )
        if value is not None
    }
    if args.roles is not None:
        fields["roles"] = [role.strip() for role in args.roles.split(",") if role.strip()]
    if not fields:
        raise UsageError("nothing to change: give at least one field option (see --help)")
    async with context.client(signed_in=True) as client:
        user = await client.users.update(args.user_id, etag=args.etag, **fields)
    _show(context, args, user)
    return None


async def _delete(context: Context, args: argparse.Namespace) -> int | None:
    if not args.yes:
        if not context.stdin.isatty():
            raise UsageError("refusing to delete without confirmation: add --yes")
        if not context.confirm(f"Delete account {args.user_id!r} at {context.target}?"):
            context.stderr.write("Nothing was deleted.\n")
            return None
    async with context.client(signed_in=True) as client:
        own = args.user_id in ("me", client.session and client.session.user_id)
        await client.users.delete(args.user_id, etag=args.etag)
    if own:
        context.credentials.remove(context.target)
    context.stdout.write(f"Deleted {args.user_id}.\n")
    return None


async def _list(context: Context, args: argparse.Namespace) -> int | None:
    if args.page_size < 0 or (args.limit is not None and args.limit < 0):
        raise UsageError("--page-size and --limit must not be negative")
    async with context.client(signed_in=True) as client:
        pager = client.users.list(filter=args.filter, page_size=args.page_size)
        if args.json:

            async def items() -> AsyncIterator[dict[str, Any]]:
                count = 0
                if args.limit == 0:
                    return
                async for user in pager:
                    yield user_dict(user)
                    count += 1
                    if args.limit is not None and count >= args.limit:
                        return

            await write_json_array(context.stdout, items())
            return None
        table = TableWriter(context.stdout, TABLE_COLUMNS)
        async for page in pager.pages():
            rows = [user_row(user) for user in page.users]
            if args.limit is not None:
                rows = rows[: max(0, args.limit - table.rows)]
            if rows or table.rows == 0:
                table.write(rows)
            if args.limit is not None and table.rows >= args.limit:
                break
    return None
