"""The ``worldpool`` Typer app and what its commands share: the named exit codes, the
``--help`` epilog, the ``--redis`` / ``--namespace`` options, the helpers that turn errors
into exit codes, and :func:`main`.

The commands live in one module per group and register themselves on :data:`app` when
imported (:mod:`worldpool.cli` imports them, in the order ``--help`` lists them): demo and
explain (:mod:`.demo`), serve (:mod:`.serve`), worker (:mod:`.worker`), the deployment
commands (:mod:`.deployment`), and simulate (mounted from :mod:`worldpool.sim.cli`).

Exit codes (named, documented in ``--help`` and docs/cli.md):

    0  OK            the command (or the workflow it waited for) succeeded
    1  FAILED        the task or workflow ended failed / cancelled
    2  USAGE         bad arguments or input files (the message says what to fix)
    3  NOT_FOUND     an id names nothing
    4  UNAVAILABLE   the backend (Redis) or server cannot be reached
    5  REFUSED       a worker refused to start (claims it cannot back)
    6  TIMEOUT       a wait ran out before the work ended (it may still finish)
"""

from __future__ import annotations

import asyncio
import importlib
import os
from enum import IntEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from worldpool.config import Settings
from worldpool.errors import (
    BackendError,
    ConfigError,
    NotFoundError,
    ValidationError,
    WorldpoolError,
)

console = Console()
err = Console(stderr=True)


class WorkerRefused(ConfigError):
    """The worker claims something it cannot back (exit code 5)."""


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    UNAVAILABLE = 4
    REFUSED = 5
    TIMEOUT = 6  # waited as long as asked; the work may still finish


EPILOG = """\
Examples:

\b
  worldpool demo                                   # the seed scenario, embedded, no server
  worldpool demo --user-location tokyo --no-live
  worldpool explain --pool pool.toml --capabilities coding --gpu --user-location tokyo
  worldpool serve --redis redis://localhost:6379/0
  worldpool worker --redis redis://hub:6379/0 --id gpu-tokyo-1 --region ap-northeast-1 \\
      --capabilities coding,planning --cost-per-hour 6.5 --handlers mypkg.handlers:HANDLERS
  worldpool submit workflow.toml --redis redis://hub:6379/0 --wait
  worldpool status wf-1234 --redis redis://hub:6379/0
  worldpool list --status failed --redis redis://hub:6379/0
  worldpool result wf-1234.build --wait-s 60 --redis redis://hub:6379/0
  worldpool simulate --pool seed --workload seed-day --compare random,least-loaded

\b
Exit codes: 0 ok, 1 task/workflow failed, 2 bad input, 3 unknown id, 4 backend
unreachable, 5 worker refused to start, 6 timed out waiting (the work may still finish).
"""

app = typer.Typer(
    name="worldpool",
    help="Route AI-agent work to the right worker anywhere in the world.",
    epilog=EPILOG,
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

RedisOpt = Annotated[
    str | None,
    typer.Option(
        "--redis",
        envvar="WORLDPOOL_REDIS_URL",
        help="redis:// or rediss:// URL of the deployment's Redis",
    ),
]
NamespaceOpt = Annotated[
    str,
    typer.Option("--namespace", envvar="WORLDPOOL_NAMESPACE", help="key namespace"),
]


def fail(code: Exit, message: str) -> typer.Exit:
    # The message is text, not markup ("worldpool[worker]" must print as written), and is
    # never wrapped: a pipe or a CI log gets it whole, on one line.
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(int(code))


def run_async(coro: Any) -> Any:
    """Run a coroutine, turning worldpool errors into messages and exit codes."""
    try:
        return asyncio.run(coro)
    except BrokenPipeError:  # `worldpool events | head`: the reader left, nothing went wrong
        silence_stdout()
        raise typer.Exit(int(Exit.OK)) from None
    except NotFoundError as exc:
        raise fail(Exit.NOT_FOUND, str(exc)) from None
    except WorkerRefused as exc:
        raise fail(Exit.REFUSED, str(exc)) from None
    except (ConfigError, ValidationError) as exc:
        raise fail(Exit.USAGE, str(exc)) from None
    except TimeoutError as exc:  # before OSError, its parent: a wait ran out, Redis is fine
        raise fail(Exit.TIMEOUT, f"timed out: {exc or 'the wait ran out'}") from None
    except (BackendError, ConnectionError, OSError) as exc:
        raise fail(Exit.UNAVAILABLE, f"cannot reach the backend: {exc}") from None
    except WorldpoolError as exc:
        raise fail(Exit.FAILED, str(exc)) from None


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's capture)
        pass


def settings_for(redis: str | None, namespace: str = "default", **extra: Any) -> Settings:
    try:
        return Settings.from_env(redis_url=redis, namespace=namespace, **extra)
    except ConfigError as exc:
        raise fail(Exit.USAGE, str(exc)) from None


def log_to_stderr() -> None:
    """Long-running commands (serve, worker) log what they do: one line per event."""
    import logging

    logging.basicConfig(
        level=os.environ.get("WORLDPOOL_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from worldpool.redact import install_log_redaction

    install_log_redaction()  # no password of a URL in any log line, whoever logs it


def need_redis(redis: str | None) -> str:
    if not redis:
        raise fail(
            Exit.USAGE,
            "this command talks to a deployment: pass --redis URL or set "
            "WORLDPOOL_REDIS_URL (the embedded mode runs in one process: see "
            "`worldpool demo`)",
        )
    return redis


def main(args: list[str] | None = None) -> None:
    """The ``worldpool`` script (and ``python -m worldpool``). Click's own errors (a
    missing argument, a bad option value, an unknown command) read like every other
    error: one line, ``error: WHAT; see `worldpool CMD --help```, exit 2; a pipe whose
    reader left ends quietly, whichever command was printing."""
    import sys

    click_error, help_error = _click_errors()
    try:
        code = app(args=args, standalone_mode=False)
    except help_error as exc:  # bare `worldpool`: the help, as click prints it
        exc.show()  # type: ignore[attr-defined]
        code = exc.exit_code  # type: ignore[attr-defined]
    except click_error as exc:
        raise SystemExit(fail(Exit.USAGE, usage_line(exc)).exit_code) from None
    except typer.Abort:
        code = 130
    except BrokenPipeError:
        silence_stdout()
        code = int(Exit.OK)
    sys.exit(code if isinstance(code, int) else 0)


def usage_line(exc: Exception) -> str:
    """Click's message for a usage error, on one line, with where to look."""
    format_message = getattr(exc, "format_message", None)
    message = str(format_message() if format_message else exc)
    text = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    ctx = getattr(exc, "ctx", None)
    where = getattr(ctx, "command_path", None) or "worldpool"
    return f"{text.rstrip('.')}; see `{where} --help`"


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """``(ClickException, NoArgsIsHelpError)`` of the click that typer runs on (recent
    typer vendors its own copy; older ones use click itself)."""
    exceptions = importlib.import_module("typer._click.exceptions")
    if not hasattr(exceptions, "ClickException"):  # pragma: no cover - typer < 0.25
        exceptions = importlib.import_module("click.exceptions")
    help_error = getattr(exceptions, "NoArgsIsHelpError", _NeverRaised)
    return exceptions.ClickException, help_error


class _NeverRaised(Exception):
    """Stands in for click's NoArgsIsHelpError where that click has none."""
