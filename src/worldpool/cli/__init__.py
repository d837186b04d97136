"""The ``worldpool`` command line: :mod:`.app` holds the Typer app, exit codes and shared
helpers; each other module one command group (``serve``, ``worker``, the deployment
commands, ``watch``) and the rich renderings they share (:mod:`.render`)."""

from worldpool.cli.app import main

__all__ = ["main"]
