"""The README stays in step with the code: every setting and every RPC is documented."""

from __future__ import annotations

from pathlib import Path

from usermgmt.v1 import auth_service_pb2, user_service_pb2
from usermgmt_server.api.status import STATUS_BY_ERROR
from usermgmt_server.config import OPTIONS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [option.env for option in OPTIONS if f"`{option.env}`" not in README]
    assert missing == []


def test_every_notifier_setting_is_documented() -> None:
    from usermgmt_server.notifier.settings import NOTIFIER_OPTIONS

    missing = [option.env for option in NOTIFIER_OPTIONS if f"`{option.env}`" not in README]
    assert missing == []


def test_run_and_test_commands_are_documented() -> None:
    assert "make run" in README and "make test" in README


def test_every_rpc_has_a_grpcurl_example_or_a_row() -> None:
    services = [
        user_service_pb2.DESCRIPTOR.services_by_name["UserService"],
        auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"],
    ]
    for service in services:
        for method in service.methods:
            assert f"{service.full_name}/{method.name}" in README, method.full_name


def test_every_event_type_has_an_example() -> None:
    from usermgmt_server.domain.events import EVENT_TYPES

    for event_type in EVENT_TYPES:
        assert f'"type": "{event_type}"' in README, event_type


def test_every_error_reason_is_documented() -> None:
    for error_type, _ in STATUS_BY_ERROR:
        assert f"`{error_type.reason}`" in README, error_type.__name__
