"""What a unit of work costs on each worker: speed, $/work, estimated completion time.

Shared by the work-aware scorers (``throughput``, ``cost_per_work``, ``completion_time``).

* **Speed** comes from what workers advertise: the served model named by
  ``task.requirements.model`` (:class:`~worldpool.models.ServedModel`: ``tokens_per_s``
  for one request and ``concurrent_requests`` sustained in parallel, measured by the
  worker when ``measured_at`` is set). Columns are memoised per model until profiles change.
* **Batching**: a request's speed holds at ``tokens_per_s`` while the box has at most
  ``concurrent_requests`` in flight, then falls in proportion (``k`` requests on a box
  sustaining ``c`` each get ``c / k`` of the one-request speed); ``k`` counts up to the
  worker's slots (``max_concurrency``), beyond which a request queues instead. Read from the live
  ``running`` column, so decisions later in a dispatch pass see earlier reservations.
* **Work size**: ``payload["max_tokens"]`` when a positive int, else
  :data:`DEFAULT_OUTPUT_TOKENS`.
* **Cost of work**: ``$/h ÷ throughput``. For an LLM task the box's throughput is
  ``tokens_per_s * concurrent_requests`` tokens/s, giving $ per 1k tokens; for other
  tasks a slot-hour is the unit (``$/h ÷ max_concurrency``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from worldpool import geo
from worldpool.routing.interface import Mask, RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot
from worldpool.routing.scorers.base import user_location

F64 = npt.NDArray[np.float64]

DEFAULT_OUTPUT_TOKENS = 256  # a chat reply, when the payload does not say
DEFAULT_BANDWIDTH_MBPS = 100.0  # a worker that does not advertise its bandwidth
TINY_USD = 1e-9  # keeps ratios finite for free (on-prem) workers


def model_of(ctx: RoutingContext) -> str | None:
    name = ctx.task.requirements.model
    return name.lower() if name else None


def output_tokens(ctx: RoutingContext) -> int:
    value = ctx.task.payload.get("max_tokens")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_OUTPUT_TOKENS


def model_columns(pool: PoolSnapshot, model: str) -> tuple[F64, F64]:
    """Per row: one-request tokens/s and sustained concurrency of ``model`` (0 if absent)."""

    def compute() -> tuple[F64, F64]:
        speed = np.zeros(len(pool), dtype=np.float64)
        conc = np.zeros(len(pool), dtype=np.float64)
        for row, worker in enumerate(pool.workers):
            for served in worker.profile.hardware.models:
                if served.name.lower() == model:
                    speed[row] = served.tokens_per_s
                    conc[row] = served.concurrent_requests
                    break
        return speed, conc

    columns: tuple[F64, F64] = pool.memo(("work.model", model), compute)
    return columns


def bandwidth_mbps(pool: PoolSnapshot) -> F64:
    def compute() -> F64:
        out = np.full(len(pool), DEFAULT_BANDWIDTH_MBPS, dtype=np.float64)
        for row, worker in enumerate(pool.workers):
            network = worker.profile.hardware.network
            if network is not None and network.bandwidth_mbps:
                out[row] = network.bandwidth_mbps
        return out

    column: F64 = pool.memo(("work.bandwidth",), compute)
    return column


def slot_column(pool: PoolSnapshot) -> F64:
    """Per row: its slots as a float, at least 1 (profiles only, kept until they change)."""
    column: F64 = pool.memo(
        ("work.slots",), lambda: np.maximum(pool.max_concurrency.astype(np.float64), 1.0)
    )
    return column


def _concurrency(pool: PoolSnapshot, model: str) -> F64:
    """Per row: the sustained concurrency of ``model``, at least 1."""
    column: F64 = pool.memo(
        ("work.concurrency", model), lambda: np.maximum(model_columns(pool, model)[1], 1.0)
    )
    return column


def request_speed(ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> F64 | None:
    """Tokens/s the next request would get on each row (batching curve), or None when
    the task names no model or no row advertises a speed for it."""
    model = model_of(ctx)
    if model is None:
        return None
    s = model_columns(pool, model)[0][rows]
    if not bool((s > 0).any()):
        return None
    # This request included; past the slots it queues (completion_time), not batches.
    slots = slot_column(pool)[rows]
    in_flight = np.minimum(pool.running[rows].astype(np.float64) + 1.0, slots)
    share = np.minimum(1.0, _concurrency(pool, model)[rows] / in_flight)
    out: F64 = s * share
    return out


def _per_unit_columns(pool: PoolSnapshot, model: str | None) -> tuple[F64, Mask]:
    """Per row: $ per unit of work over the whole pool (``model`` None: per slot-hour,
    else per 1k tokens of it, inf where it has no speed), and whether a speed is known;
    profiles only, so kept until they change."""

    def compute() -> tuple[F64, Mask]:
        price = pool.cost_per_hour
        if model is None:
            return price / slot_column(pool), np.zeros(len(pool), dtype=np.bool_)
        speed, conc = model_columns(pool, model)
        tput = speed * np.maximum(conc, 1.0)  # tokens/s of the whole box
        with np.errstate(divide="ignore", invalid="ignore"):  # where() drops those rows
            per_1k = np.where(tput > 0, price / (3.6 * tput), np.inf)
        return per_1k, tput > 0

    columns: tuple[F64, Mask] = pool.memo(("work.per-unit", model), compute)
    return columns


def usd_per_unit(ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> tuple[F64, str]:
    """Price of one unit of work per row and the unit's name ("1k tokens", "slot-hour")."""
    model = model_of(ctx)
    if model is not None:
        per_1k, known = _per_unit_columns(pool, model)
        if bool(known[rows].any()):
            out: F64 = per_1k[rows]
            return out, "1k tokens"
    per_slot: F64 = _per_unit_columns(pool, None)[0][rows]
    return per_slot, "slot-hour"


def input_bytes(ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> F64:
    """Bytes of the task's inputs each row would have to fetch (cached ones are free)."""
    out = np.zeros(len(rows), dtype=np.float64)
    for ref in ctx.task.inputs.values():
        holders = ctx.artifact_holders.get(ref.digest) or pool.holders_of(ref.digest)
        missing = np.ones(len(rows), dtype=np.bool_)
        if holders:
            missing &= ~np.isin(rows, pool.rows_of(holders))
        out += missing * float(ref.size)
    return out


def round_trip_s(ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> F64:
    """The user's round trip for an interactive task, else the orchestrator's."""
    user = user_location(ctx)
    if user is None:
        out: F64 = pool.latency_ms[rows] / 1000.0
        return out
    # From geography only: one column per user location until profiles change.
    column: F64 = pool.memo(
        ("work.rtt_s", user.lat, user.lon),
        lambda: geo.rtt_ms_from_km(pool.distance_km_from(user)) / 1000.0,
    )
    out = column[rows]
    return out


def best_over(values: Scores) -> Scores:
    """``min / value``: the best (lowest) row scores 1, twice as bad 0.5; inf -> 0."""
    if len(values) == 0:
        return values
    low = float(values.min())
    with np.errstate(divide="ignore", invalid="ignore"):
        out: Scores = np.where(np.isfinite(values), (low + TINY_USD) / (values + TINY_USD), 0.0)
    return np.fmin(np.fmax(out, 0.0), 1.0)


def gpu_name(pool: PoolSnapshot, row: int) -> str:
    text = pool.gpu_models[int(pool.gpu_model_index[row])]
    return text.split(" | ")[0].upper() if text else "CPU box"
