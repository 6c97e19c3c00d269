"""`hubproxy keys create|update|limit|show` and `hubproxy users limit`: keys with a scope
(expiry, model allow-list, spend cap) and rate limits for keys and users. Running servers
apply a change within their reload interval."""

from __future__ import annotations

import argparse
from typing import Any

from hubproxy.cli.common import UsageError, database
from hubproxy.errors import HubError
from hubproxy.gateway import auth
from hubproxy.limits import fields
from hubproxy.store import accounts
from hubproxy.store.clock import now_ms
from hubproxy.store.ops import apply

CLEAR = {"expires": "never", "models": "any", "budget": "none"}  # what clears each, in update


def register(
    users: argparse._SubParsersAction,  # type: ignore[type-arg]
    keys: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
) -> None:
    p = keys.add_parser(
        "create", parents=[common], help="create a key (and the user, as member, if new)"
    )
    p.add_argument("--user", required=True)
    p.add_argument("--label", default="")
    _scope_flags(p, update=False)
    p.set_defaults(run=create)
    p = keys.add_parser("update", parents=[common], help="change a key's scope")
    p.add_argument("id", type=int)
    _scope_flags(p, update=True)
    p.set_defaults(run=update)
    p = keys.add_parser("limit", parents=[common], help="set a key's rate limits")
    p.add_argument("id", type=int)
    _limit_flags(p)
    p.set_defaults(run=key_limit)
    p = keys.add_parser("show", parents=[common], help="a key's scope and rate limits")
    p.add_argument("id", type=int)
    p.set_defaults(run=show)
    p = users.add_parser("limit", parents=[common], help="set a user's rate limits")
    p.add_argument("name")
    _limit_flags(p)
    p.set_defaults(run=user_limit)


def _scope_flags(p: argparse.ArgumentParser, *, update: bool) -> None:
    clear = " ('{}' removes it)" if update else ""
    p.add_argument(
        "--expires",
        help="expiry: a date (midnight UTC) or date and time, e.g. 2027-01-01"
        + clear.format(CLEAR["expires"]),
    )
    p.add_argument("--ttl", help="expiry as a time from now: 90s, 45m, 12h, 30d, 2w")
    p.add_argument(
        "--models",
        help="allowed models, comma-separated globs: 'openai/*,anthropic/claude-*'"
        + clear.format(CLEAR["models"]),
    )
    p.add_argument(
        "--budget",
        help="spend cap in credits per UTC day or month: 5/day, 20/month"
        + clear.format(CLEAR["budget"]),
    )


def _limit_flags(p: argparse.ArgumentParser) -> None:
    for name, what in (
        ("rpm", "requests per minute"),
        ("tpm", "tokens per minute"),
        ("concurrency", "requests at once"),
    ):
        p.add_argument(
            f"--{name}", help=f"{what}: a number, 0 for no limit, 'default' for [limits]'s"
        )


def _scope(args: argparse.Namespace, *, update: bool) -> dict[str, Any]:
    """The api_keys columns the flags set; a bad value names its flag (exit 2)."""
    now = now_ms()
    given = {n: getattr(args, n) for n in ("expires", "ttl", "models", "budget")}
    given = {n: v for n, v in given.items() if v is not None}
    if "expires" in given and "ttl" in given:
        raise UsageError("--expires and --ttl both set an expiry: give one")
    cols: dict[str, Any] = {}
    try:
        for name, value in given.items():
            cleared = update and value == CLEAR.get(name)
            if name == "expires":
                cols["expires_at"] = None if cleared else fields.expires(value, now, "--expires")
            elif name == "ttl":
                cols["expires_at"] = fields.ttl(value, now, "--ttl")
            elif name == "models":
                globs = () if cleared else fields.models(value, "--models")
                cols.update(models=fields.models_column(globs))
            else:
                cap = None if cleared else fields.budget(value, "--budget")
                cols["budget"], cols["budget_period"] = (None, None) if cap is None else cap
    except HubError as exc:
        raise UsageError(exc.message) from None
    return cols


def _limits(args: argparse.Namespace) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name in accounts.LIMIT_COLUMNS:
        value = getattr(args, name)
        if value is None:
            continue
        try:
            out[name] = None if value == "default" else fields.limit(value, f"--{name}")
        except HubError as exc:
            raise UsageError(exc.message) from None
    if not out:
        raise UsageError("nothing to change: give --rpm, --tpm or --concurrency")
    return out


def create(args: argparse.Namespace) -> int:
    scope = _scope(args, update=False)
    conn = database(args)
    user = accounts.user_by_name(conn, args.user)
    if user is None:
        apply(conn, [accounts.create_user(args.user, "member")])
        user = accounts.user_by_name(conn, args.user)
        print(f"created user {args.user} (member)")
    assert user is not None
    key = auth.new_key()
    apply(
        conn,
        [
            accounts.create_key(
                user["id"], auth.hash_key(key), auth.visible_prefix(key), args.label, scope
            )
        ],
    )
    row = accounts.key_by_hash(conn, auth.hash_key(key))
    assert row is not None
    print(f"created key {row['id']} ({row['prefix']}…) for {args.user}; it is shown only once:")
    print(key)
    return 0


def update(args: argparse.Namespace) -> int:
    cols = _scope(args, update=True)
    if not cols:
        raise UsageError("nothing to change: give --expires, --ttl, --models or --budget")
    return _change_key(args, cols)


def key_limit(args: argparse.Namespace) -> int:
    return _change_key(args, _limits(args))


def _change_key(args: argparse.Namespace, cols: dict[str, Any]) -> int:
    conn = database(args)
    if accounts.key_by_id(conn, args.id) is None:
        raise UsageError(f"no key with id {args.id}; see `hubproxy keys list`")
    apply(conn, [accounts.update_key(args.id, cols)])
    _print_key(conn, args.id)
    return 0


def show(args: argparse.Namespace) -> int:
    conn = database(args)
    if accounts.key_by_id(conn, args.id) is None:
        raise UsageError(f"no key with id {args.id}; see `hubproxy keys list`")
    _print_key(conn, args.id)
    return 0


def user_limit(args: argparse.Namespace) -> int:
    limits = _limits(args)
    conn = database(args)
    user = accounts.user_by_name(conn, args.name)
    if user is None:
        raise UsageError(f"no user named '{args.name}'; see `hubproxy users list`")
    apply(conn, [accounts.set_user_limits(user["id"], limits)])
    row = accounts.user_limits(conn, args.name)
    assert row is not None
    print(f"user {args.name}: {_show_limits(fields.limits_view(row))}")
    return 0


def _print_key(conn: Any, key_id: int) -> None:
    row = accounts.key_settings(conn, key_id)
    assert row is not None
    view = fields.key_view(row)
    print(f"key {key_id} ({view['prefix']}…) of {view['user']}")
    print(f"  expires: {view['expires_at'] or 'never'}")
    print(f"  models:  {','.join(view['models']) if view['models'] else 'any'}")
    print(f"  budget:  {view['budget'] or 'none'}")
    print(f"  limits:  {_show_limits(view['limits'])}")


def _show_limits(limits: dict[str, int | None]) -> str:
    return ", ".join(
        f"{name} {'default' if v is None else ('none' if v == 0 else v)}"
        for name, v in limits.items()
    )
