"""Commands for one's own account: ``login``, ``logout``, ``register``."""

from __future__ import annotations

import argparse

from usermgmt._errors import UsermgmtError
from usermgmt.cli._app import EXIT_ERROR, Commands, Context, UsageError
from usermgmt.cli._output import user_dict, write_json, write_user


def register(commands: Commands) -> None:
    """Add the account commands."""
    login = commands.add(
        "login",
        _login,
        help="sign in and keep the session for later commands",
        description="Sign in with a username or e-mail address. The password is asked for "
        "without echo, or read from standard input with --password-stdin; it is never an "
        "argument. The session is stored for the target and renewed automatically.",
    )
    login.add_argument("login", nargs="?", help="username or e-mail (asked for when left out)")
    _password_stdin(login)

    commands.add(
        "logout",
        _logout,
        help="end the stored session on the server and forget it",
    )

    new_account = commands.add(
        "register",
        _register,
        help="create an account",
        description="Create an account. The password is asked for twice without echo, or "
        "read from standard input with --password-stdin.",
    )
    new_account.add_argument("--username", required=True)
    new_account.add_argument("--email", required=True)
    new_account.add_argument("--display-name", default="")
    new_account.add_argument(
        "--request-id", help="idempotency key: repeating it returns the first result"
    )
    new_account.add_argument("--json", action="store_true", help="print the account as JSON")
    _password_stdin(new_account)


def _password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )


async def _login(context: Context, args: argparse.Namespace) -> int | None:
    login = args.login
    if not login:
        if args.password_stdin or not context.stdin.isatty():
            raise UsageError("give the login as an argument")
        context.stderr.write("Login: ")
        context.stderr.flush()
        login = context.stdin.readline().strip()
        if not login:
            raise UsageError("a login is required")
    password = context.read_password()
    async with context.client() as client:
        session = await client.auth.login(login, password)
    username = session.user.username if session.user is not None else login
    context.save_session(session, username)
    context.stdout.write(f"Signed in to {context.target} as {username} ({session.user_id}).\n")
    return None


async def _logout(context: Context, args: argparse.Namespace) -> int | None:
    stored = context.credentials.load(context.target)
    if stored is None:
        context.stdout.write(f"Not signed in to {context.target}.\n")
        return None
    failure: UsermgmtError | None = None
    if stored.refresh_token:
        async with context.client(signed_in=True) as client:
            try:
                await client.auth.logout()
            except UsermgmtError as error:
                failure = error
    context.credentials.remove(context.target)
    if failure is not None:
        context.stderr.write(
            f"usermgmt: error: the server did not end the session ({failure}); "
            "the local credentials were removed\n"
        )
        return EXIT_ERROR
    context.stdout.write(f"Signed out of {context.target}.\n")
    return None


async def _register(context: Context, args: argparse.Namespace) -> int | None:
    password = context.read_password(confirm=True)
    async with context.client() as client:
        user = await client.users.register(
            args.username,
            args.email,
            password,
            display_name=args.display_name,
            request_id=args.request_id,
        )
    if args.json:
        write_json(context.stdout, user_dict(user))
    else:
        write_user(context.stdout, user)
    return None
