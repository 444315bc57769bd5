"""Helpers shared by the client tests."""

from __future__ import annotations

from tests.e2e.harness import PASSWORD, unique
from usermgmt import UsermgmtClient
from usermgmt.v1 import user_pb2


async def new_account(client: UsermgmtClient, prefix: str = "client") -> user_pb2.User:
    """Register a fresh account (password ``PASSWORD``) through ``client``."""
    username = unique(prefix)
    return await client.users.register(username, f"{username}@example.com", PASSWORD)


async def signed_in(address: str, prefix: str = "client", **options: object) -> UsermgmtClient:
    """A new client of ``address`` signed in as a fresh account (close it when done)."""
    client = UsermgmtClient(address, **options)  # type: ignore[arg-type]
    user = await new_account(client, prefix)
    await client.auth.login(user.username, PASSWORD)
    return client
