"""CLI commands for AIGNE v1 apps: register an app by its public key, set its subscription, list."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from hubproxy.cli.common import UsageError, database, table, timestamp
from hubproxy.errors import HubError
from hubproxy.gateway import signatures
from hubproxy.store import apps
from hubproxy.store.clock import now_ms
from hubproxy.store.ops import apply


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """`hubproxy apps register|subscribe|list`."""
    group = sub.add_parser("apps", help="AIGNE v1 apps (signed calls)").add_subparsers(
        required=True
    )
    p = group.add_parser("register", parents=[common], help="register an app by its ed25519 key")
    p.add_argument("--public-key", required=True, help="0x and 64 hex digits")
    p.set_defaults(run=register)
    p = group.add_parser("subscribe", parents=[common], help="set an app's subscription")
    p.add_argument("app", help="the app's DID")
    p.add_argument("--until", required=True, help="YYYY-MM-DD or an ISO 8601 time (UTC if bare)")
    p.add_argument("--status", choices=apps.STATUSES, default="active")
    p.set_defaults(run=subscribe)
    group.add_parser("list", parents=[common], help="list apps").set_defaults(run=list_apps)


def register(args: argparse.Namespace) -> int:
    try:
        key = signatures.parse_public_key(args.public_key)
    except HubError as exc:
        raise UsageError(exc.message) from None
    did = signatures.did_from_public_key(key)
    conn = database(args)
    known = apps.app(conn, did) is not None
    apply(conn, apps.register_ops(did, "0x" + key.hex()))
    print(f"{'app already registered' if known else 'registered app'}: {did}")
    return 0


def subscribe(args: argparse.Namespace) -> int:
    until = parse_until(args.until)
    conn = database(args)
    if apps.app(conn, args.app) is None:
        raise UsageError(f"no app {args.app!r}; see `hubproxy apps list`")
    apply(conn, [apps.subscribe(args.app, until, args.status)])
    state = "active" if args.status == "active" and until > now_ms() else "inactive"
    print(f"subscription of {args.app}: {args.status} until {timestamp(until)} UTC ({state})")
    return 0


def list_apps(args: argparse.Namespace) -> int:
    now = now_ms()
    rows = [
        (a["did"], a["public_key"][:10] + "…", timestamp(a["created_at"]),
         a["subscription_status"], timestamp(a["subscription_until"]),
         "yes" if apps.is_active(a, now) else "no")
        for a in apps.apps(database(args))
    ]  # fmt: skip
    table(["app", "public key", "registered", "subscription", "until", "active"], rows)
    return 0


def parse_until(text: str) -> int:
    """A date (the end of that day is not implied: 2027-01-01 means its midnight) or an ISO
    8601 time, as Unix ms; without a zone it is UTC."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--until must be YYYY-MM-DD or ISO 8601, got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
