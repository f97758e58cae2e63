"""Shared plumbing of the tools/ scripts: user errors become one clear line, not a traceback."""
import os
import sys

# Errors that carry a message for the user (what is wrong and what to do); CheckpointError and ConfigError
# are ValueErrors. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, KeyError)


def run_cli(main, argv=None):
    """Run `main(argv)` and return its exit status; a user error prints `error: <message>` to stderr and gives 1,
    Ctrl-C prints `interrupted: ...` and gives 130.

    Tools call `sys.exit(run_cli(main))`. Set PPCLS_DEBUG=1 to get the full traceback instead.
    """
    try:
        return main(argv) or 0
    except USER_ERRORS as exc:
        if os.environ.get("PPCLS_DEBUG"):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C: no traceback; the engine's message says how to resume
        print(f"interrupted{': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
