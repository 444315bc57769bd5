"""Every RPC of the API has exactly one access rule; new RPCs are closed until given one."""

from __future__ import annotations

import pytest

from usermgmt.v1 import auth_service_pb2, probe_service_pb2, user_service_pb2
from usermgmt_server.api.permissions import RULES, Access, rule_for

SERVICES = [
    user_service_pb2.DESCRIPTOR.services_by_name["UserService"],
    auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"],
    probe_service_pb2.DESCRIPTOR.services_by_name["ProbeService"],
]
ALL_METHODS = [f"/{s.full_name}/{m.name}" for s in SERVICES for m in s.methods]


def test_every_rpc_has_a_rule_and_every_rule_an_rpc() -> None:
    assert sorted(RULES) == sorted(ALL_METHODS)


@pytest.mark.parametrize(
    ("method", "access"),
    [
        ("/usermgmt.v1.UserService/Register", Access.PUBLIC),
        ("/usermgmt.v1.AuthService/Authenticate", Access.PUBLIC),
        ("/usermgmt.v1.ProbeService/Ready", Access.PUBLIC),
        ("/usermgmt.v1.UserService/GetUser", Access.SELF_OR_ADMIN),
        ("/usermgmt.v1.UserService/UpdateUser", Access.SELF_OR_ADMIN),
        ("/usermgmt.v1.UserService/DeleteUser", Access.SELF_OR_ADMIN),
        ("/usermgmt.v1.UserService/ListUsers", Access.ADMIN),
        ("/usermgmt.v1.UserService/ImportUsers", Access.ADMIN),
    ],
)
def test_access_levels(method: str, access: Access) -> None:
    rule = rule_for(method)
    assert rule is not None and rule.access is access
    if access is Access.SELF_OR_ADMIN:
        assert rule.target is not None


def test_unlisted_rpc_of_ours_is_closed() -> None:
    assert rule_for("/usermgmt.v1.UserService/DropAllUsers") is None
    assert rule_for("/usermgmt.v2.UserService/GetUser") is None


def test_infrastructure_services_are_open() -> None:
    for method in (
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ):
        rule = rule_for(method)
        assert rule is not None and rule.access is Access.PUBLIC
