"""Shared plumbing of tools/train.py, eval.py and infer.py: user errors become one clear line, not a traceback."""
import os
import sys

from ppcls_lite.engine.checkpoint import CheckpointError

# Errors that carry a message for the user (what is wrong and what to do). Anything else is a bug: traceback.
USER_ERRORS = (ValueError, FileNotFoundError, KeyError, CheckpointError)


def run_cli(main):
    """Run `main()`; on a user error print `error: <message>` to stderr and exit with status 1.

    Set PPCLS_DEBUG=1 to get the full traceback instead.
    """
    try:
        return main()
    except USER_ERRORS as exc:
        if os.environ.get("PPCLS_DEBUG"):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
