"""The command line: serve, migrate, check-config, users, keys, rates, credits, calls, usage,
apps, backup, restore."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version

from hubproxy.billing import pricing
from hubproxy.cli import apps, billing
from hubproxy.cli import backup as backup_cli
from hubproxy.cli import catalog as catalog_cli
from hubproxy.cli import keys as keys_cli
from hubproxy.cli import secrets as secrets_cli
from hubproxy.cli.common import UsageError, database, settings_of, table, timestamp
from hubproxy.cli.serve import serve
from hubproxy.config import ConfigError
from hubproxy.gateway import auth
from hubproxy.store import accounts, backend
from hubproxy.store.backend import StoreUnavailable
from hubproxy.store.migrate import MigrationError
from hubproxy.store.ops import apply


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except (ConfigError, MigrationError, StoreUnavailable, UsageError) as exc:
        print(f"hubproxy: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", help="config file (default: $HUBPROXY_CONFIG, else config/hubproxy.toml)"
    )
    parser = argparse.ArgumentParser(prog="hubproxy", description=__doc__)
    parser.add_argument("--version", action="version", version=f"hubproxy {version('hubproxy')}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(
        name: str, run: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(run=run)
        return p

    command("serve", serve, "migrate the database, then serve the gateway")
    command("migrate", _migrate, "apply pending database migrations")
    command("check-config", _check_config, "validate the config (and its env vars) and exit")

    users = sub.add_parser("users", help="manage users").add_subparsers(required=True)
    p = users.add_parser("create", parents=[common], help="create a user")
    p.add_argument("name")
    p.add_argument("--role", choices=auth.ROLES, default="member")
    p.set_defaults(run=_users_create)
    users.add_parser("list", parents=[common], help="list users").set_defaults(run=_users_list)

    keys = sub.add_parser("keys", help="manage hub API keys").add_subparsers(required=True)
    keys_cli.register(users, keys, common)  # keys create|update|limit|show, users limit
    p = keys.add_parser("list", parents=[common], help="list keys (never the keys themselves)")
    p.add_argument("--user")
    p.set_defaults(run=_keys_list)
    p = keys.add_parser("revoke", parents=[common], help="revoke a key by its id")
    p.add_argument("id", type=int)
    p.set_defaults(run=_keys_revoke)

    rates = sub.add_parser("rates", help="model prices").add_subparsers(required=True)
    p = rates.add_parser("set", parents=[common], help="set a model's rate (credits per 1M tokens)")
    p.add_argument("model", help="provider/model")
    p.add_argument("--input", help="credits per 1M input tokens (chat, embedding: required)")
    p.add_argument("--output", help="credits per 1M output tokens (chat, embedding: required)")
    p.add_argument("--cached-input", help="credits per 1M cached input tokens (default: --input)")
    p.add_argument("--per-image", default="0", help="credits per image")
    p.add_argument(
        "--per-image-variant", action="append", metavar="SIZE/QUALITY=CREDITS",
        help="credits per image of that size and quality, over --per-image (repeatable)",
    )  # fmt: skip
    p.add_argument("--per-1m-chars", default="0", help="credits per 1M input characters")
    p.add_argument("--per-second", default="0", help="credits per second of audio")
    p.add_argument("--per-mb", default="0", help="credits per MB uploaded (no duration known)")
    p.add_argument(
        "--type", choices=pricing.TYPES,
        help="what the rate prices (default: image or audio by the prices given, else chat)",
    )  # fmt: skip
    p.set_defaults(run=billing.rates_set)
    rates.add_parser("list", parents=[common], help="list rates").set_defaults(
        run=billing.rates_list
    )
    p = rates.add_parser(
        "bulk", parents=[common], help="set rates from unit costs: cost x (1 + margin%%) / price"
    )
    p.add_argument("unit_costs", help='JSON file: [{"model", "input", "output", ...}, ...]')
    p.add_argument("--margin", required=True, help="margin in percent, e.g. 20")
    p.add_argument("--credit-price", default="1", help="money one credit sells for")
    p.add_argument("--dry-run", action="store_true", help="show the new rates, change nothing")
    p.set_defaults(run=billing.rates_bulk)

    p = sub.add_parser("calls", parents=[common], help="list model calls, newest first")
    p.add_argument("--user")
    p.add_argument("--status", choices=("processing", "success", "failed"))
    p.add_argument("--model", help="provider/model")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(run=billing.calls)
    p = sub.add_parser("usage", parents=[common], help="usage by day, hour or model")
    p.add_argument("--user")
    p.add_argument("--group-by", choices=("day", "hour", "model"), default="day")
    p.add_argument("--days", type=int, default=7, help="how far back (default 7)")
    p.set_defaults(run=billing.usage_report)

    credits = sub.add_parser("credits", help="balances and grants").add_subparsers(required=True)
    p = credits.add_parser("grant", parents=[common], help="grant (or adjust) a user's credits")
    p.add_argument("user")
    p.add_argument("amount", help="credits, a decimal number (e.g. 25 or 0.5; -3 to adjust)")
    p.add_argument("--kind", choices=pricing.KINDS, default="grant")
    p.add_argument("--note", default="")
    p.set_defaults(run=billing.credits_grant)
    p = credits.add_parser("balance", parents=[common], help="show balances")
    p.add_argument("user", nargs="?")
    p.set_defaults(run=billing.credits_balance)
    apps.add_parser(sub, common)
    catalog_cli.register(sub, common)
    secrets_cli.register(sub, common)
    backup_cli.register(sub, common)
    return parser


def _migrate(args: argparse.Namespace) -> int:
    conn, applied = backend.connect_blocking(settings_of(args).database)
    conn.close()
    print("applied: " + ", ".join(applied) if applied else "up to date")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    settings = settings_of(args, secrets=True)
    names = ", ".join(f"{p.name} ({p.type})" for p in settings.providers) or "none"
    print(f"{settings.source}: ok; database {settings.database.where()}; providers: {names}")
    return 0


def _users_create(args: argparse.Namespace) -> int:
    conn = database(args)
    if accounts.user_by_name(conn, args.name) is not None:
        raise UsageError(f"user '{args.name}' exists already")
    apply(conn, [accounts.create_user(args.name, args.role)])
    print(f"created user {args.name} ({args.role})")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    rows = accounts.users(database(args))
    table(["id", "name", "role", "created"], [(r[0], r[1], r[2], timestamp(r[3])) for r in rows])
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    rows = accounts.keys(database(args), args.user)
    table(
        ["id", "user", "label", "prefix", "created", "revoked"],
        [(r[0], r[1], r[2], r[3] + "…", timestamp(r[4]), timestamp(r[5])) for r in rows],
    )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    conn = database(args)
    row = accounts.key_by_id(conn, args.id)
    if row is None:
        raise UsageError(f"no key with id {args.id}; see `hubproxy keys list`")
    if row["revoked_at"] is not None:
        print(f"key {args.id} ({row['prefix']}…) was revoked already")
        return 0
    apply(conn, [accounts.revoke_key(args.id)])
    print(f"revoked key {args.id} ({row['prefix']}…); running servers drop it within seconds")
    return 0
