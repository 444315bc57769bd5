"""``health``: whether the target serves (standard health check and readiness probe)."""

from __future__ import annotations

import argparse

from usermgmt._errors import NotServing, Unavailable
from usermgmt.cli._app import EXIT_ERROR, Commands, Context
from usermgmt.cli._output import write_json


def register(commands: Commands) -> None:
    """Add the health command."""
    health = commands.add(
        "health",
        _health,
        help="check that the target serves (exit 0) or not (exit 1)",
        description="Ask grpc.health.v1.Health/Check and usermgmt.v1.ProbeService/Ready. "
        "Exit code 0 when the target serves, 1 when it does not or cannot be reached.",
    )
    health.add_argument("--json", action="store_true", help="print the result as JSON")


async def _health(context: Context, args: argparse.Namespace) -> int | None:
    async with context.client() as client:
        status = await client.health()
        try:
            await client.ready()
            ready, detail = True, ""
        except (NotServing, Unavailable) as error:
            ready, detail = False, str(error)
    serving = status == "SERVING" and ready
    if args.json:
        write_json(
            context.stdout,
            {"target": context.target, "status": status, "ready": ready, "serving": serving},
        )
    else:
        line = f"{context.target}: {status}, {'ready' if ready else 'not ready'}"
        context.stdout.write(line + (f" ({detail})" if detail else "") + "\n")
    return None if serving else EXIT_ERROR
