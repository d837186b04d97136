"""The deployment-shape benchmark: ``make bench`` / ``python -m bench``.

One private ``redis-server`` (free loopback port, no persistence) serves every system. For
worldpool: a client process (:mod:`bench.wp_producer`), a real ``worldpool serve`` and
``W`` real ``worldpool worker`` processes; for each peer (taskiq, dramatiq, saq, celery,
installed by :mod:`bench.peers_venv` into their own venv, pinned): its producer process
and its own worker CLI with ``W`` worker processes. Runs are interleaved (every system at
W=1, then W=2, repeated ``--reps`` times, the order rotated each repetition); each run
measures ``--tasks`` no-op tasks end to end and the single-task round trip, and the CPU
seconds of every process by role (psutil, children included). Then the pool-size runs:
worldpool at W=1 with 10 / 1,000 / 10,000 registered workers (the extra ones registered
and heartbeated by :mod:`bench.pool_filler`, lacking the task's handler), and ``serve``'s
idle CPU with the biggest pool. Then the memory run: resident memory of ``serve`` and of
a worker at rest and at their peak with ``--memory-tasks`` (10,000) tasks in flight at
once (:mod:`bench.wp_inflight`). Writes ``bench/results/deploy-<time>.json`` and the
generated sections of ``docs/performance.md`` (:mod:`bench.deploy_report`).

    python -m bench --tasks 2000 --reps 1 --pool-sizes 10 1000   # a quick check
    python -m bench --memory-only                                 # the memory run alone
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench import deploy_report, peers_venv
from bench.bench_redis import redis_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PEERS = ("taskiq", "dramatiq", "saq", "celery")
WP = "worldpool"
# Shared by every worldpool process of a run; a slower heartbeat keeps one filler process
# able to keep 10,000 workers live on a small machine (offline after 3 missed ones).
WP_ENV = {"WORLDPOOL_HEARTBEAT_S": "4.0"}
RSS_SAMPLE_S = 0.25  # the memory run samples resident memory this often


class Procs:
    """The processes of one run, by role, and their CPU seconds (children included)."""

    def __init__(self) -> None:
        self.roles: dict[str, list[subprocess.Popen[bytes]]] = {}

    def start(self, role: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE if role == "client" else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if role != "client" else None,
        )
        self.roles.setdefault(role, []).append(process)
        return process

    def cpu(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for role, procs in self.roles.items():
            total = 0.0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(p.pid)
                    for q in [proc, *proc.children(recursive=True)]:
                        with contextlib.suppress(psutil.Error):
                            t = q.cpu_times()
                            total += t.user + t.system
            out[role] = total
        return out

    def rss_mb(self, role: str) -> float:
        total = 0
        for p in self.roles.get(role, []):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(p.pid)
                total += sum(q.memory_info().rss for q in [proc, *proc.children(recursive=True)])
        return total / 2**20

    def stop(self) -> None:
        # Children too: a peer's worker forks its own (saq --workers N), which a terminated
        # parent leaves behind spinning on a Redis that is gone (and they skew every later
        # run's figures).
        children: list[psutil.Process] = []
        for procs in self.roles.values():
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    children += psutil.Process(p.pid).children(recursive=True)
                if p.poll() is None:
                    p.terminate()
        for procs in self.roles.values():
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()


def redis_pid(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    pid = int(client.info("server")["process_id"])
    client.close()
    return pid


def redis_cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


def wait_registered(url: str, namespace: str, count: int, timeout_s: float = 60.0) -> None:
    import redis

    client = redis.Redis.from_url(url)
    key = f"wp:{{{namespace}}}:workers"
    deadline = time.monotonic() + timeout_s
    while client.scard(key) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {client.scard(key)} of {count} workers registered")
        time.sleep(0.1)
    client.close()


def measure(
    procs: Procs, url: str, client: list[str], env: dict[str, str], n: int
) -> dict[str, Any]:
    pid = redis_pid(url)
    before, redis_before = procs.cpu(), redis_cpu(pid)
    producer = procs.start("client", client, env)
    out, _ = producer.communicate(timeout=900)
    if producer.returncode != 0:
        raise SystemExit(f"producer {' '.join(client)} exited with {producer.returncode}")
    after = procs.cpu()
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    cpu = {r: after[r] - before.get(r, 0.0) for r in after}
    cpu["redis"] = redis_cpu(pid) - redis_before
    cpu["client"] = figures.pop("client_cpu_s")  # it has exited: it measured itself
    figures["cpu_s_per_1000"] = {r: round(v * 1000 / n, 4) for r, v in cpu.items()}
    return figures


def start_worldpool(
    procs: Procs,
    url: str,
    ns: str,
    w: int,
    env: dict[str, str],
    slots: int = 64,
    replicas: int = 1,
) -> None:
    """``replicas`` x ``worldpool serve`` and ``w`` workers with ``slots`` task slots each."""
    py = sys.executable
    for i in range(replicas):
        serve = [py, "-m", "worldpool", "serve", "--redis", url, "--namespace", ns,
                 "--port", "0", "--name", f"serve-{i}"]  # fmt: skip
        procs.start("serve", serve, env)
    for i in range(w):
        procs.start("worker", [py, "-m", "worldpool", "worker", "--redis", url,
                               "--namespace", ns, "--id", f"bench-{i}", "--no-builtin",
                               "--handlers", "bench.noop_handlers:HANDLERS",
                               "--max-concurrency", str(slots), "--region", "us-east-1"], env)  # fmt: skip


def run_worldpool(
    url: str, w: int, tasks: int, trips: int, extra: int = 0, replicas: int = 1
) -> dict[str, Any]:
    ns = f"b{uuid.uuid4().hex[:8]}"
    py = sys.executable
    procs = Procs()
    env = {**WP_ENV, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    try:
        start_worldpool(procs, url, ns, w, env, replicas=replicas)
        if extra:
            procs.start("filler", [py, "-m", "bench.pool_filler", "--redis", url,
                                   "--namespace", ns, "--count", str(extra)], env)  # fmt: skip
        wait_registered(url, ns, w + extra)
        time.sleep(1.0 + min(10.0, extra / 1000))  # the registrations' changes settle
        idle_before = procs.cpu().get("serve", 0.0)
        time.sleep(3.0)
        idle = (procs.cpu().get("serve", 0.0) - idle_before) / 3.0
        rest_mb = procs.rss_mb("serve")
        client = [py, "-m", "bench.wp_producer", "--redis", url, "--namespace", ns,
                  "--tasks", str(tasks), "--round-trips", str(trips)]  # fmt: skip
        figures = measure(procs, url, client, env, tasks + trips)
        figures.update(serve_idle_cpu_share=round(idle, 4), serve_rss_mb_at_rest=round(rest_mb, 1))
        figures["worker_rss_mb"] = round(procs.rss_mb("worker") / max(1, w), 1)
        return figures
    finally:
        procs.stop()


def run_memory(url: str, tasks: int, hold_s: float) -> dict[str, Any]:
    """Resident memory (RSS, children included) of ``serve`` and of one worker at rest,
    and their peaks (sampled every ``RSS_SAMPLE_S``) while ``tasks`` ``hold`` tasks are in
    flight at once (the worker has a slot for each; each task holds its slot ``hold_s``)."""
    ns = f"m{uuid.uuid4().hex[:8]}"
    procs = Procs()
    env = {**WP_ENV, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    roles = ("serve", "worker", "client")
    try:
        start_worldpool(procs, url, ns, 1, env, slots=max(1, tasks))
        wait_registered(url, ns, 1)
        time.sleep(3.0)  # start-up settles
        rest = {role: procs.rss_mb(role) for role in roles[:2]}
        producer = procs.start("client", [sys.executable, "-m", "bench.wp_inflight", "--redis",
                               url, "--namespace", ns, "--tasks", str(tasks),
                               "--hold-s", str(hold_s)], env)  # fmt: skip
        peak = dict.fromkeys(roles, 0.0)
        deadline = time.monotonic() + 900
        while producer.poll() is None:
            if time.monotonic() > deadline:
                raise SystemExit("the memory run's producer ran past 900 s")
            for role in roles:
                peak[role] = max(peak[role], procs.rss_mb(role))
            time.sleep(RSS_SAMPLE_S)
        out = producer.stdout.read() if producer.stdout else b""
        if producer.returncode != 0:
            raise SystemExit(f"the memory run's producer exited with {producer.returncode}")
        figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        figures.pop("client_cpu_s", None)
        time.sleep(3.0)  # after the run: what is kept
        after = {role: procs.rss_mb(role) for role in roles[:2]}
        figures["rss_mb"] = {
            role: {
                "at_rest": round(rest.get(role, 0.0), 1),
                "peak": round(peak[role], 1),
                **({"after": round(after[role], 1)} if role in after else {}),
            }
            for role in roles
        }
        return figures
    finally:
        procs.stop()


def run_peer(system: str, python: str, url: str, w: int, tasks: int, trips: int) -> dict[str, Any]:
    from bench.peers_app import worker_command

    flush(url)
    procs = Procs()
    env = {"BENCH_PEER": system, "BENCH_REDIS": url, "PYTHONPATH": str(ROOT)}
    try:
        procs.start("worker", worker_command(system, python, w), env)
        time.sleep(3.0)  # the worker CLIs print nothing dependable when ready
        client = [python, "-m", "bench.peers_app", "produce", system, str(tasks), str(trips)]
        return measure(procs, url, client, env, tasks + trips)
    finally:
        procs.stop()


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    python = peers_venv.ensure() if args.peers else ""
    replicated = [f"{WP} x{n} serve" for n in args.replicas if n > 1]
    systems = [WP, *replicated, *(args.peers or [])]
    runs: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with _redis() as url:
        for rep in range(args.reps):
            order = systems[rep % len(systems) :] + systems[: rep % len(systems)]
            for w in args.workers:
                for system in order:
                    print(f"rep {rep + 1} W={w} {system} ...", file=sys.stderr, flush=True)
                    try:
                        if system == WP:
                            figures = run_worldpool(url, w, args.tasks, args.round_trips)
                        elif system.startswith(WP):  # "worldpool x2 serve"
                            n = int(system.split()[1][1:])
                            figures = run_worldpool(
                                url, w, args.tasks, args.round_trips, replicas=n
                            )
                        else:
                            figures = run_peer(system, python, url, w, args.tasks, args.round_trips)
                    except (SystemExit, subprocess.TimeoutExpired) as exc:  # one run, not all
                        print(f"  failed: {exc}", file=sys.stderr)
                        failed.append({"system": system, "workers": w, "rep": rep,
                                       "error": str(exc)})  # fmt: skip
                        continue
                    runs.append({"system": system, "workers": w, "rep": rep, **figures})
        pool_runs = []
        for size in args.pool_sizes:
            print(f"pool size {size} ...", file=sys.stderr, flush=True)
            figures = run_worldpool(url, 1, args.tasks, args.round_trips, extra=max(0, size - 1))
            pool_runs.append({"registered": size, **figures})
        memory = None
        if args.memory_tasks:
            print(f"memory, {args.memory_tasks:,} tasks in flight ...", file=sys.stderr, flush=True)
            memory = run_memory(url, args.memory_tasks, args.memory_hold_s)
        server = _redis_version(url)
    return {
        "settings": {
            "tasks": args.tasks,
            "round_trips": args.round_trips,
            "reps": args.reps,
            "workers": args.workers,
            "pool_sizes": args.pool_sizes,
            "replicas": args.replicas,
            "worldpool_env": WP_ENV,
            "worker_max_concurrency": 64,
            "memory_tasks": args.memory_tasks,
            "memory_hold_s": args.memory_hold_s,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": args.load_before,
            "load_after": list(os.getloadavg()),
            "redis_server": server,
        },
        "versions": {"python": sys.version.split()[0], **_versions(args.peers)},
        "runs": runs,
        "pool_runs": pool_runs,
        "failed_runs": failed,
        "memory": memory,
    }


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    with redis_server() as url:
        yield url


def _redis_version(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url)
    version = str(client.info("server")["redis_version"])
    client.close()
    return version


def _versions(peers: list[str]) -> dict[str, str]:
    from importlib.metadata import version

    found = {"worldpool": version("worldpool")}
    if peers:
        found.update(peers_venv.versions())
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS)
    parser.add_argument("--pool-sizes", type=int, nargs="*", default=[10, 1_000, 10_000])
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2],
                        help="worldpool also with this many serve replicas (1: the plain run)")  # fmt: skip
    parser.add_argument("--memory-tasks", type=int, default=10_000,
                        help="tasks in flight at once in the memory run (0: no memory run)")  # fmt: skip
    parser.add_argument("--memory-hold-s", type=float, default=45.0,
                        help="how long each task of the memory run stays in flight")  # fmt: skip
    parser.add_argument("--memory-only", action="store_true",
                        help="the memory run alone (about a minute): no throughput runs")  # fmt: skip
    parser.add_argument("--no-docs", action="store_true", help="write the JSON only")
    args = parser.parse_args(argv)
    if args.memory_only:
        if not args.memory_tasks:
            parser.error("--memory-only needs --memory-tasks > 0")
        args.reps, args.peers, args.pool_sizes = 0, [], []
    args.load_before = list(os.getloadavg())
    result = run_all(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"deploy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    doc = ROOT / "docs" / "performance.md"
    if result["runs"]:
        print(deploy_report.table(result))
        if not args.no_docs:
            deploy_report.write_docs(result, path, doc)
    if result["memory"]:
        print(deploy_report.memory_table(result))
        if not args.no_docs:
            deploy_report.write_memory_docs(result, path, doc)


if __name__ == "__main__":
    main()
