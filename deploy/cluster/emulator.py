"""The cluster's AWS stand-in as a process of its own: the embedded mode's moto server
(DynamoDB requests serialised, so conditional writes are atomic) on a loopback port."""

from __future__ import annotations

import argparse
import signal
import threading

from usermgmt_server.embedded import EmulatorServer

BANNER = "emulator listening on"


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; prints ``emulator listening on <url>`` once ready."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: any free one)")
    arguments = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = EmulatorServer(arguments.port)
    server.start()
    print(f"{BANNER} {server.endpoint}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
