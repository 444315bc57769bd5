"""The gRPC server's channel arguments: connection lifetime, keepalive policy, message limits."""

from __future__ import annotations

from usermgmt_server.config import Settings

MESSAGE_LIMIT_BYTES = 4 * 1024 * 1024
# Pings faster than the minimum interval are strikes; one more than this many ends the
# connection with GOAWAY ENHANCE_YOUR_CALM ("too_many_pings"). gRPC's own default.
MAX_PING_STRIKES = 2


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def server_options(settings: Settings, *, share_port: bool = False) -> list[tuple[str, int]]:
    """Channel arguments of the gRPC server for ``settings``.

    ``share_port`` turns on SO_REUSEPORT so that several worker processes listen on one port
    and the kernel spreads connections over them; otherwise a second process on the same
    port fails to bind, as it should.
    """
    options = [
        ("grpc.so_reuseport", 1 if share_port else 0),
        ("grpc.max_receive_message_length", MESSAGE_LIMIT_BYTES),
        ("grpc.max_send_message_length", MESSAGE_LIMIT_BYTES),
        ("grpc.keepalive_time_ms", _ms(settings.keepalive_time)),
        ("grpc.keepalive_timeout_ms", _ms(settings.keepalive_timeout)),
        # Keep probing connections that have no call in flight: those are the ones a vanished
        # peer leaves behind. Without this, gRPC stops after two unanswered pings.
        ("grpc.http2.max_pings_without_data", 0),
        # Clients with no call in flight may ping too (at the minimum interval), so a client
        # keeping its connection warm is not mistaken for an abusive one.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(settings.keepalive_min_ping_interval)),
        ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES),
    ]
    if settings.max_connection_idle:
        options.append(("grpc.max_connection_idle_ms", _ms(settings.max_connection_idle)))
    if settings.max_connection_age:
        options += [
            ("grpc.max_connection_age_ms", _ms(settings.max_connection_age)),
            ("grpc.max_connection_age_grace_ms", _ms(settings.shutdown_grace)),
        ]
    return options
