"""The ``usermgmt`` command-line client.

Each command group is a module with ``register(commands)``, listed in
``usermgmt.cli._app.COMMAND_MODULES``; a command's handler is ``async def (context, args)``
returning an exit code (``None`` for success). ``Context`` gives it a client of the target
(with the stored session when asked), password prompts and the output streams.
"""

from usermgmt.cli._app import (
    COMMAND_MODULES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SIGNED_OUT,
    EXIT_USAGE,
    Commands,
    Context,
    SignedOut,
    UsageError,
    main,
)

__all__ = [
    "COMMAND_MODULES",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SIGNED_OUT",
    "EXIT_USAGE",
    "Commands",
    "Context",
    "SignedOut",
    "UsageError",
    "main",
]
