"""The bootstrap administrator: created once, even when several instances start together."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from tests.e2e.harness import (
    ADMIN_USERNAME,
    Api,
    bearer,
    create_table,
    scan_table,
    server_environment,
)
from usermgmt.v1 import user_service_pb2
from usermgmt_server.app import Application
from usermgmt_server.config import load_settings


async def test_three_instances_starting_at_once_create_one_admin(moto_endpoint: str) -> None:
    table = f"usermgmt-boot-{uuid.uuid4().hex[:8]}"
    await create_table(moto_endpoint, table)
    environ = server_environment(
        moto_endpoint, table, USERMGMT_BOOTSTRAP_ADMIN_EMAIL="Root@Example.com"
    )
    applications = [Application(load_settings(environ=environ)) for _ in range(3)]
    endpoints = await asyncio.gather(*(app.start() for app in applications))
    try:
        items = await scan_table(moto_endpoint, table)
        admins = [i for i in items if i.get("username") == ADMIN_USERNAME and "password_hash" in i]
        assert len(admins) == 1
        assert admins[0]["roles"] == ["admin"]
        for endpoint in endpoints:
            async with _channel(endpoint.port) as channel:
                api = Api(channel)
                token = await api.admin_token()
                me = await api.users.GetUser(
                    user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
                )
                assert me.user.email == "Root@Example.com" and me.user.email_verified
                assert list(me.user.roles) == ["admin"]
    finally:
        await asyncio.gather(*(app.stop() for app in applications))

    # A restart finds the administrator and creates nothing.
    items = await scan_table(moto_endpoint, table)
    again = Application(load_settings(environ=environ))
    await again.start()
    await again.stop()
    keys = {(item["pk"], item["sk"]) for item in items}
    after = {(item["pk"], item["sk"]) for item in await scan_table(moto_endpoint, table)}
    assert after <= keys, "a restart must not write anything"


def _channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}")
