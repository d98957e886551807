"""What every command shares: logging to the terminal at the level asked, and user errors as one
paragraph with a non-zero exit (the traceback only with --debug)."""

from __future__ import annotations

import functools
import logging
import os
import sys

import click

from exporters import ParityError
from pipeline.core.errors import IntegrityError, UserError

log = logging.getLogger("compress")


def setup_logging(quiet: bool, debug: bool) -> None:
    """The terminal shows the pipeline's lines at the level asked (a run's `run.log` gets every one)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if debug else "%(message)s"))
    handler.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    log.handlers[:] = [handler]
    log.setLevel(handler.level)
    if not logging.getLogger().handlers:  # so a library's logging.basicConfig on import (ExecuTorch's) adds no second printer
        logging.getLogger().addHandler(logging.NullHandler())


def friendly_errors(command):
    """User errors as one paragraph and exit 1; --debug shows the traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug") or kwargs.get("debug")
        try:
            return command(*args, **kwargs)
        except (UserError, ParityError, FileNotFoundError) as e:
            if debug:
                raise
            rank = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""  # which process of a torchrun run
            click.echo(f"error{rank}: {e}", err=True)
            sys.exit(getattr(e, "exit_code", 2 if isinstance(e, IntegrityError) else 1))
        except KeyboardInterrupt:
            click.echo("interrupted: finished stages are kept; run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper
