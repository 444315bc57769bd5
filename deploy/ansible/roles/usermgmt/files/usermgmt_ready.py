"""Exit 0 when a usermgmt server answers ``usermgmt.v1.ProbeService/Ready`` with OK, 1 otherwise.

Run with the Python of the service's virtual environment, which has grpcio and the generated
code: ``/opt/usermgmt/venv/bin/python usermgmt_ready.py --address 127.0.0.1:50051``. OK means
the server serves and reaches its storage: the same answer the load balancer's health check reads.
"""

from __future__ import annotations

import argparse
import sys

import grpc

from usermgmt.v1 import probe_service_pb2, probe_service_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    """Ask the probe once; print the outcome and return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default="127.0.0.1:50051", help="host:port of the server")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    arguments = parser.parse_args(argv)
    with grpc.insecure_channel(arguments.address) as channel:
        stub = probe_service_pb2_grpc.ProbeServiceStub(channel)
        try:
            stub.Ready(probe_service_pb2.ReadyRequest(), timeout=arguments.timeout)
        except grpc.RpcError as error:
            print(f"not ready: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    print(f"ready: {arguments.address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
