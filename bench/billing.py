"""The billed hubproxy: its [billing] table, the credits granted before the load, and the check
after it that the load was really debited (so billing on cannot pass by billing nothing)."""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

import orjson

from bench import hub, load, upstream

SERVICE = "hubproxy-billing"  # the service (and target) name in bench/stack.py, bench/plan.py
# Every billed service: on SQLite, and (--backend postgres) on PostgreSQL, one and three
# instances (bench/postgres.py).
SERVICES = (SERVICE, "hubproxy-pg", "hubproxy-pg3")
GRANT = 1_000_000  # credits granted to the bench user: far more than a run can spend
MICRO = 1_000_000  # micro-credits per credit
INPUT, OUTPUT = "0.15", "0.6"  # the model's rate: credits per 1M tokens (gpt-4o-mini's price)
EXTRA = f"""
[billing]
mode = "credits"

[[billing.rates]]
model = "{hub.PROVIDER}/gpt-4o-mini"
input = "{INPUT}"
output = "{OUTPUT}"
"""


def grant(config: Path) -> None:
    """`hubproxy credits grant`: before `serve`, which reads the balances once at start."""
    hub.cli(config, "credits", "grant", hub.USER, str(GRANT))


def balance(config: Path) -> tuple[int, int]:
    """`hubproxy credits balance <user>` (from the database): (balance, ledger sum), in
    micro-credits."""
    out = hub.cli(config, "credits", "balance", hub.USER)
    fields = out.strip().splitlines()[-1].split()
    if len(fields) != 3 or fields[0] != hub.USER:
        raise RuntimeError(f"unexpected `hubproxy credits balance` output:\n{out}")
    try:
        return _micro(fields[1]), _micro(fields[2])
    except (InvalidOperation, ValueError):
        raise RuntimeError(f"unexpected `hubproxy credits balance` output:\n{out}") from None


def cost_each(chunks: int) -> int:
    """What one bench request costs, in micro-credits: the usage the fake upstream reports for
    it (plain or streamed alike) at the rate, rounded up once, as DESIGN.md states."""
    body = orjson.loads(load.request_body("gpt-4o-mini", stream=False, include_usage=False))
    usage = upstream.usage(body, completion_tokens=len(upstream.words(chunks - 2)))
    prompt: int = usage["prompt_tokens"]
    completion: int = usage["completion_tokens"]
    millionths = prompt * _micro(INPUT) + completion * _micro(OUTPUT)
    return -(-millionths // MICRO)


def check(
    config: Path, sent: int, chunks: int, service: str = SERVICE, timeout_s: float = 15.0
) -> tuple[str, str | None]:
    """After the load of `sent` requests (warm-ups included): a line for the report, and what
    is wrong, if anything: every request must have been debited its cost, no less, no more.
    hubproxy's writer records the debits a moment after each answer, so this polls the
    database until they are all there, for at most timeout_s."""
    expected = sent * cost_each(chunks)
    deadline = time.monotonic() + timeout_s
    while True:
        total, ledger_sum = balance(config)
        debited = GRANT * MICRO - total
        if debited >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    line = (
        f"billing on, {service}: {sent:,} requests (warm-ups included) debited "
        f"{debited:,} micro-credits "
        f"({debited / sent:.2f} each, {cost_each(chunks)} expected); "
        f"balance {total / MICRO:,.6f} of {GRANT:,} credits granted"
    )
    if debited != expected:
        return line, (
            f"{service} debited {debited:,} micro-credits for {sent:,} requests, expected "
            f"{expected:,}: billing did not bill what it served, so its numbers do not count"
        )
    if total != ledger_sum:
        return line, f"{service}: balance {total:,} != ledger sum {ledger_sum:,} micro-credits"
    return line, None


def _micro(credits: str) -> int:
    """Decimal credits → micro-credits (for a rate: millionths of a micro-credit per token)."""
    return int(Decimal(credits).scaleb(6))
