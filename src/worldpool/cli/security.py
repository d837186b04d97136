"""``worldpool credential`` (a worker's key) and ``worldpool acl`` (least-privilege Redis
users) (the warning for an
unprotected Redis is :func:`worldpool.backends.redis.connection.unprotected_warning`).

The ACL rules come from :func:`acl_rules`, the one source of truth: docs/redis.md shows
its output and tests/security/test_acl.py runs hostile commands as each user against a
real redis-server. Redis ≥ 7 checks the keys a Lua script touches against the calling
user, so each worker rule below lists exactly the keys worldpool's scripts touch for it.
"""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from worldpool.cli.app import Exit, NamespaceOpt, app, console, fail
from worldpool.cli.output import emit_json
from worldpool.config import Settings
from worldpool.errors import ConfigError
from worldpool.identity import worker_key
from worldpool.models import WorkerProfile

ROLES = ("orchestrator", "api", "worker")

# Everything a connection needs to set itself up (redis-py sends HELLO; its CLIENT SETINFO,
# a command Redis 7.0 lacks, is refused harmlessly).
_CONNECT = ["+ping", "+hello", "+auth", "+client|setname", "+select"]
# Whole-server commands no worldpool user runs.
_NEVER = ["-@dangerous", "-keys", "-flushall", "-flushdb", "-config", "-eval", "-eval_ro"]


def acl_rules(role: str, namespace: str = "default", worker_id: str | None = None) -> list[str]:
    """The ACL rules (after ``ACL SETUSER name reset on >password``) of one role."""
    # Imported here: the CLI loads without the redis extra (the demo needs none).
    from worldpool.backends.redis.keys import Keys

    k = Keys.for_namespace(namespace)
    p = k.prefix
    if role == "orchestrator":
        return ["resetchannels", f"~{p}*", "+@all", *_NEVER, "+info", "+time", *_CONNECT]
    if role == "api":
        # Everything of the deployment but the leases and the workers' own claim keys: an
        # API-only process never runs a singleton duty.
        patterns = [
            k.task("*"), k.fence("*"), k.tasks, k.active, k.deadlines, k.workflow_tasks("*"),
            k.workflow("*"), k.workflows, k.order, k.pending, k.idempotency("*"),
            k.blob("*"), k.events, k.dead, k.worker_dead("*"), k.epoch, k.workers, k.worker("*"),
            k.heartbeats, k.slots("*"), k.queue("*"), k.results, k.effect("*"),
            k.handlers_offered, k.queued, k.reply("*"), k.pool_changed,
        ]  # fmt: skip
        return ["resetchannels", *(f"~{x}" for x in patterns), "+@all", *_NEVER, "+time",
                *_CONNECT]  # fmt: skip
    if role != "worker" or not worker_id:
        raise ConfigError(f"role must be one of {', '.join(ROLES)} (worker needs --worker ID)")
    WorkerProfile.model_validate({"id": worker_id, "location": {"region": "x"}})  # id check
    own = [k.worker(worker_id), k.queue(worker_id), k.slots(worker_id)]
    return [
        "resetchannels",
        "-@all",
        *_CONNECT,
        "+time", "+script|load", "+script|exists",
        # root: its own hash, stream and slots; its start claims (no replay); the reason it
        # was refused; artifacts, the effect ledger and the deployment epoch
        *(f"~{x}" for x in own), f"~{p}seen:{worker_id}/*", f"%R~{k.refused(worker_id)}",
        f"~{k.blob('*')}", f"~{k.effect('*')}", f"~{k.epoch}",
        "+xreadgroup", "+xack", "+xdel", "+xgroup|create", "+srem", "+scard", "+set",
        "+get", "+exists", "+hset", "+hget", "+hmget", "+hincrby", "+pexpire",
        # selectors: each allows one command on shared keys, nothing else there
        # append-only: no read, ack, del; its dead letters only to its own stream (the
        # stream names the worker: it cannot write one for another, nor into `dead`)
        f"(%W~{k.results} %W~{k.worker_dead(worker_id)} +xadd)",
        f"(%W~{k.workers} +sadd)",  # join the registry; never remove anyone
        f"(%W~{k.handlers_offered} +sadd)",  # the handler names it offers (register.lua)
        f"(%W~{k.heartbeats} +zadd)",
        f"(~{k.pool_changed} +zadd +zrevrange)",  # "my state changed": a re-read, no more
        f"(%R~{k.fence('*')} +hmget)",  # the fencing copy the scripts check (never t:*)
        # the scripts themselves: every command a script runs is checked again as above
        f"(~{p}* +evalsha)",
    ]  # fmt: skip


def setuser_args(name: str, password: str, rules: list[str]) -> list[str]:
    """The arguments of ``ACL SETUSER`` (as a client sends them)."""
    return ["ACL", "SETUSER", name, "reset", "on", f">{password}", *rules]


def setuser_line(name: str, password: str, rules: list[str]) -> str:
    """The command for redis-cli: a selector (with spaces) is quoted."""
    args = setuser_args(name, password, rules)
    return " ".join(f'"{a}"' if " " in a else a for a in args)


@app.command("credential")
def credential(
    worker_id: Annotated[str, typer.Argument(help="the worker's id (its --id)")],
    as_json: Annotated[bool, typer.Option("--json", help='print {"worker_id", "key"}')] = False,
) -> None:
    """Print WORKER_ID's credential (needs WORLDPOOL_SECRET): start the worker with
    --credential KEY or WORLDPOOL_WORKER_KEY=KEY."""
    try:
        secret = Settings.from_env().secret
    except ConfigError as exc:
        raise fail(Exit.USAGE, str(exc)) from None
    if not secret:
        raise fail(Exit.USAGE, "set WORLDPOOL_SECRET (the deployment secret) to derive keys")
    key = worker_key(secret, worker_id)
    if as_json:
        emit_json({"worker_id": worker_id, "key": key}, console=console)
    else:
        console.print(key, highlight=False, soft_wrap=True)


@app.command("acl")
def acl(
    role: Annotated[str, typer.Argument(help="orchestrator | api | worker")],
    worker: Annotated[str | None, typer.Option("--worker", help="the worker's id")] = None,
    user: Annotated[str | None, typer.Option(help="user name (default: from the role)")] = None,
    password: Annotated[
        str | None, typer.Option(help="the user's password (default: a random one)")
    ] = None,
    namespace: NamespaceOpt = "default",
    as_json: Annotated[
        bool, typer.Option("--json", help='print {"user", "password", "rules", "args"}')
    ] = False,
) -> None:
    """Print the ACL SETUSER line of a least-privilege Redis user for ROLE."""
    try:
        rules = acl_rules(role, namespace, worker)
    except (ConfigError, ValueError) as exc:
        raise fail(Exit.USAGE, str(exc).splitlines()[0]) from None
    name = user or ("wp-worker-" + worker if role == "worker" and worker else "wp-" + role)
    secret = password or secrets.token_urlsafe(24)
    if as_json:  # `args`: what a client sends (redis-py: r.execute_command(*args))
        doc = {"user": name, "password": secret, "rules": rules}
        emit_json({**doc, "args": setuser_args(name, secret, rules)}, console=console)
        return
    console.print(setuser_line(name, secret, rules), highlight=False, soft_wrap=True, markup=False)
