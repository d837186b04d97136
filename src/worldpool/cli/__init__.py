"""The ``worldpool`` command line.

:mod:`.app` holds the Typer app, the exit codes and the helpers the commands share; each
command group is one module that registers its commands on that app when imported:

* :mod:`.demo` - ``demo`` and ``explain`` (one process, no deployment);
* :mod:`.serve` - ``serve`` (the orchestrator, the API and dashboard);
* :mod:`.worker` - ``worker`` (profile, handlers, claims check, run);
* :mod:`.runs` - ``list``, ``result``, ``cancel``, ``retry``, ``logs`` (through ``worldpool.Client``);
* :mod:`.deployment` - ``submit``, ``status``, ``workers``, ``watch``, ``events``,
  ``dead-letters`` (one-shot commands against a deployment's Redis);
* ``simulate``, mounted from :mod:`worldpool.sim.cli`.

:mod:`.watch` (the live view) and :mod:`worldpool.render` (rich tables, shared with the
demo) are what those share. The imports below register the groups in the order
``worldpool --help`` lists them.
"""

# isort: off
# Each import registers that group's commands on `app`: the order is the order of --help.
from worldpool.cli import demo  # noqa: F401
from worldpool.cli import serve  # noqa: F401
from worldpool.cli import worker  # noqa: F401
from worldpool.cli import deployment  # noqa: F401
from worldpool.cli import security  # noqa: F401
from worldpool.cli import runs  # noqa: F401

# isort: on
from worldpool.cli.app import app, main
from worldpool.sim.cli import simulate_cmd

app.command("simulate")(simulate_cmd)

__all__ = ["main"]
