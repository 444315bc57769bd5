"""The standard gRPC health check (grpc.health.v1.Health/Check) without grpcio-health-checking.

The two messages are built in a private descriptor pool, so this module neither needs that
package nor clashes with it when both are loaded in one process.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check"
_STATUS_NAMES = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")


def _messages() -> tuple[type, type]:
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="grpc/health/v1/health.proto",
        package="grpc.health.v1",
        syntax="proto3",
    )
    proto.message_type.add(name="HealthCheckRequest").field.add(
        name="service", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL
    )
    response = proto.message_type.add(name="HealthCheckResponse")
    status = response.enum_type.add(name="ServingStatus")
    for number, name in enumerate(_STATUS_NAMES):
        status.value.add(name=name, number=number)
    response.field.add(
        name="status",
        number=1,
        type=field.TYPE_ENUM,
        type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
        label=field.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return (
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest")
        ),
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")
        ),
    )


HealthCheckRequest, HealthCheckResponse = _messages()


def status_name(number: int) -> str:
    """The ServingStatus name of ``number`` (``SERVING``, ``NOT_SERVING``, …)."""
    return _STATUS_NAMES[number] if 0 <= number < len(_STATUS_NAMES) else str(number)
