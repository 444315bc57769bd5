"""Health checking, reflection, the readiness probe and UNAVAILABLE when storage is gone."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.e2e.harness import Api, RunningServer, expect_error, running_server
from usermgmt.v1 import probe_service_pb2, probe_service_pb2_grpc

SERVICES = ("", "usermgmt.v1.UserService", "usermgmt.v1.AuthService", "usermgmt.v1.ProbeService")


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=service))).status


async def _listed_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for response in stub.ServerReflectionInfo(iter([request])):
        return {service.name for service in response.list_services_response.service}
    return set()


async def test_health_serving_for_every_service(server: RunningServer) -> None:
    async with server.channel() as channel:
        for service in SERVICES:
            assert await _health(channel, service) == health_pb2.HealthCheckResponse.SERVING
        await probe_service_pb2_grpc.ProbeServiceStub(channel).Ready(
            probe_service_pb2.ReadyRequest()
        )


async def test_reflection_lists_the_services(server: RunningServer) -> None:
    async with server.channel() as channel:
        listed = await _listed_services(channel)
    assert {s for s in SERVICES if s} | {"grpc.health.v1.Health"} <= listed


async def test_reflection_can_be_turned_off(moto_endpoint: str) -> None:
    async with (
        running_server(moto_endpoint, USERMGMT_REFLECTION="false") as server,
        server.channel() as channel,
    ):
        try:
            await _listed_services(channel)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        else:
            raise AssertionError("reflection still answers")


async def test_unreachable_storage_means_not_serving_and_unavailable(moto_endpoint: str) -> None:
    async with (
        running_server(
            "http://127.0.0.1:9",
            create=False,
            USERMGMT_BOOTSTRAP_ADMIN_USERNAME="",
            USERMGMT_BOOTSTRAP_ADMIN_PASSWORD="",
            USERMGMT_AWS_MAX_ATTEMPTS="1",
            USERMGMT_AWS_CONNECT_TIMEOUT="0.5",
        ) as server,
        server.channel() as channel,
    ):
        for service in SERVICES:
            assert await _health(channel, service) == health_pb2.HealthCheckResponse.NOT_SERVING
        probe = await expect_error(
            probe_service_pb2_grpc.ProbeServiceStub(channel).Ready(probe_service_pb2.ReadyRequest())
        )
        assert (probe.code, probe.reason) == (grpc.StatusCode.UNAVAILABLE, "NOT_SERVING")
        api = Api(channel)
        register = await expect_error(api.register())
        assert (register.code, register.reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "STORAGE_UNAVAILABLE",
        )
        login = await expect_error(api.login("somebody"))
        assert login.code == grpc.StatusCode.UNAVAILABLE


async def test_health_follows_storage_recovery(moto_endpoint: str) -> None:
    """A table that appears after start-up turns the instance SERVING within a check interval."""
    import uuid

    from tests.e2e.harness import create_table

    table = f"usermgmt-late-{uuid.uuid4().hex[:8]}"
    async with (
        running_server(
            moto_endpoint,
            table,
            create=False,
            USERMGMT_BOOTSTRAP_ADMIN_USERNAME="",
            USERMGMT_BOOTSTRAP_ADMIN_PASSWORD="",
        ) as server,
        server.channel() as channel,
    ):
        assert await _health(channel, "") == health_pb2.HealthCheckResponse.NOT_SERVING
        await create_table(moto_endpoint, table)
        for _ in range(50):
            if await _health(channel, "") == health_pb2.HealthCheckResponse.SERVING:
                break
            await asyncio.sleep(0.1)
        assert await _health(channel, "") == health_pb2.HealthCheckResponse.SERVING
