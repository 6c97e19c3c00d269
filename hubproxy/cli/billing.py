"""CLI commands for money and reports: rates, credits, calls and usage (the admin API's
operations, on the same store functions)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from hubproxy import money
from hubproxy.billing import prices, pricing
from hubproxy.cli.common import UsageError, database, settings_of, table
from hubproxy.errors import HubError
from hubproxy.store import accounts, backend, ledger, reports, usage
from hubproxy.store.ops import apply
from hubproxy.store.reader import Reader

T = TypeVar("T")


def rates_set(args: argparse.Namespace) -> int:
    provider, sep, model = args.model.partition("/")
    if not (sep and provider and model):
        raise UsageError(f"model must be provider/model, got {args.model!r}")
    kind = args.type or _kind_of(args)
    if kind in ("chat", "embedding") and (args.input is None or args.output is None):
        raise UsageError(f"a {kind} rate needs --input and --output")
    rate = _money(
        lambda: prices.Rate.parse(
            args.input or "0", args.output or "0", args.cached_input, args.per_image,
            per_image_variants=args.per_image_variant, per_1m_chars=args.per_1m_chars,
            per_second=args.per_second, per_mb=args.per_mb,
        )
    )  # fmt: skip
    apply(database(args), [ledger.set_rate(provider, model, kind, rate.strings())])
    shown = ", ".join(f"{k} {v}" for k, v in rate.strings().items() if v not in (None, "0"))
    print(f"rate for {args.model} ({kind}): {shown or 'free'} (credits per 1M tokens or "
          "characters, per image, second or MB)")  # fmt: skip
    return 0


def _kind_of(args: argparse.Namespace) -> str:
    """The rate's type when --type is not given: what its prices are for."""

    def given(value: str, name: str) -> bool:
        return _money(lambda: money.parse_amount(value, name)) > 0

    if args.per_image_variant or given(args.per_image, "per_image"):
        return "image"
    if any(
        given(v, n)
        for v, n in (
            (args.per_1m_chars, "per_1m_chars"),
            (args.per_second, "per_second"),
            (args.per_mb, "per_mb"),
        )
    ):
        return "audio"
    return "chat"


RATE_HEADERS = ["model", "type", "input", "output", "cached_input", "per_image",
                "variants", "per_1m_chars", "per_second", "per_mb"]  # fmt: skip


def rates_list(args: argparse.Namespace) -> int:
    rows = database(args).execute(
        f"SELECT provider, model, type, {', '.join(ledger.RATE_COLUMNS)} FROM model_rates "
        "ORDER BY provider, model, type"
    )
    table(RATE_HEADERS, [(f"{r[0]}/{r[1]}", r[2], *(v or "-" for v in r[3:])) for r in rows])
    return 0


def credits_grant(args: argparse.Namespace) -> int:
    conn = database(args)
    user = accounts.user_by_name(conn, args.user)
    if user is None:
        raise UsageError(f"no user named {args.user!r}; see `hubproxy users list`")
    amount = _money(
        lambda: pricing.signed_amount(args.amount, negative_ok=args.kind == "adjustment")
    )
    apply(conn, [ledger.entry(user["id"], args.kind, amount, source="", note=args.note)])
    balance = money.format_amount(ledger.balance_of(conn, user["id"]))
    print(f"{args.kind} of {money.format_amount(amount)} credits to {args.user}; "
          f"balance {balance}")  # fmt: skip
    return 0


def credits_balance(args: argparse.Namespace) -> int:
    conn = database(args)
    sql = (
        "SELECT u.name, coalesce(b.balance, 0), "
        "(SELECT coalesce(sum(amount), 0) FROM credit_ledger l WHERE l.user_id = u.id) "
        "FROM users u LEFT JOIN credit_balances b ON b.user_id = u.id"
    )
    rows = conn.execute(sql + (" WHERE u.name = ?" if args.user else "") + " ORDER BY u.name",
                        (args.user,) if args.user else ())  # fmt: skip
    table(
        ["user", "balance", "ledger sum"],
        [(r[0], money.format_amount(r[1]), money.format_amount(r[2])) for r in rows],
    )
    return 0


def _money(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except HubError as exc:
        raise UsageError(exc.message) from None


def rates_bulk(args: argparse.Namespace) -> int:
    try:
        unit_costs = json.loads(Path(args.unit_costs).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {args.unit_costs}: {exc}") from None
    body = {"unit_costs": unit_costs, "margin_percent": args.margin,
            "credit_price": args.credit_price}  # fmt: skip
    new = _money(lambda: pricing.margin_rates(body))
    rows = [(m, k, *(v or "-" for v in r.strings().values())) for (m, k), r in new.items()]
    table(RATE_HEADERS, rows)
    if args.dry_run:
        print("dry run: nothing changed")
        return 0
    ops = [
        ledger.set_rate(m.partition("/")[0], m.partition("/")[2], k, r.strings())
        for (m, k), r in new.items()
    ]
    apply(database(args), ops)
    print(f"set {len(ops)} rates")
    return 0


def calls(args: argparse.Namespace) -> int:
    async def read(conn: Reader) -> None:
        user_id = await _user_id(conn, args.user)
        provider, _, model = (args.model or "").partition("/")
        f = reports.CallFilter(user_id, args.status, provider or None, model or None)
        if args.format == "csv":
            async for chunk in reports.csv_pages(conn, f, cursor=None, page_size=1000):
                sys.stdout.write(chunk)
            return
        page, _ = await reports.calls(conn, f, cursor=None, limit=args.limit)
        table(
            ["id", "created", "user", "model", "status", "tokens", "credits", "ms", "error"],
            [(c["id"], c["created_at"], c["user"], c["model"], c["status"], c["total_tokens"],
              c["credits_decimal"], c["duration_ms"], (c["error"] or "")[:40]) for c in page],
        )  # fmt: skip

    _read(args, read)
    return 0


def usage_report(args: argparse.Namespace) -> int:
    async def read(conn: Reader) -> None:
        end = int(time.time() * 1000)
        rows = await usage.report(
            conn, group_by=args.group_by, start_ms=end - args.days * usage.DAY_MS,
            end_ms=end + 1, user_id=await _user_id(conn, args.user),
        )  # fmt: skip
        key = "model" if args.group_by == "model" else "start"
        table(
            [key, "requests", "errors", "prompt", "completion", "credits", "p50 ms", "p95 ms"],
            [(r[key] if key == "model" else reports.iso(r[key]), r["requests"], r["errors"],
              r["prompt_tokens"], r["completion_tokens"], money.format_amount(r["credits"]),
              r["p50_duration_ms"], r["p95_duration_ms"]) for r in rows],
        )  # fmt: skip

    _read(args, read)
    return 0


def _read(args: argparse.Namespace, read: Callable[[Reader], Awaitable[None]]) -> None:
    """Run an async read (the same queries the HTTP views use) on a fresh read connection."""
    settings = settings_of(args).database
    database(args).close()  # migrated

    async def run() -> None:
        conn = await backend.open_reader(settings)
        try:
            await read(conn)
        finally:
            await conn.close()

    asyncio.run(run())


async def _user_id(conn: Reader, name: str | None) -> int | None:
    if name is None:
        return None
    found = await reports.user_by_name(conn, name)
    if found is None:
        raise UsageError(f"no user named {name!r}; see `hubproxy users list`")
    return int(found["id"])
