"""`hubproxy providers|credentials|models|aliases`: the control plane from the command line.

The same checks as the admin API (catalog.validate), each write one transaction; running
servers pick changes up by the "catalog" revision. A key is read from stdin, never argv.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import Any

from hubproxy.catalog import sealing, validate
from hubproxy.catalog.probe import ProbeResult, pick_model, probe
from hubproxy.catalog.snapshot import Catalog, build, offer_map
from hubproxy.catalog.ssrf import GuardedResolver, check_base_url, config_hosts
from hubproxy.cli.common import UsageError, database, settings_of, table, timestamp
from hubproxy.config import Settings
from hubproxy.errors import HubError
from hubproxy.store import catalog as store
from hubproxy.store.ops import Op, apply

Run = Callable[[argparse.Namespace], int]


def _checked(run: Run) -> Run:
    """A refusal of bad input is a usage error: its message, and exit 2."""

    @wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except HubError as exc:
            where = f" ({exc.param})" if exc.param else ""
            raise UsageError(f"{exc.message}{where}") from None
        except sqlite3.IntegrityError as exc:
            raise UsageError(f"that conflicts with what is stored: {exc}") from None

    return wrapper


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    def group(name: str, help: str) -> Any:
        return sub.add_parser(name, help=help).add_subparsers(required=True)

    def cmd(g: Any, name: str, run: Run, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = g.add_parser(name, parents=[common], help=help)
        p.set_defaults(run=_checked(run))
        return p

    def provider_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-url")
        p.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
        p.add_argument("--api-version")
        p.add_argument("--connect-timeout", type=float)
        p.add_argument("--idle-timeout", type=float)

    g = group("providers", "upstream providers kept in the database")
    p = cmd(g, "add", providers_add, "add a provider")
    p.add_argument("name")
    p.add_argument("--type", required=True)
    provider_flags(p)
    p.add_argument("--disabled", action="store_true")
    cmd(g, "list", providers_list, "list providers (config and database)")
    p = cmd(g, "update", providers_update, "change a provider")
    p.add_argument("name")
    provider_flags(p)
    p.add_argument("--enabled", choices=("true", "false"))
    cmd(g, "remove", providers_remove, "remove a provider and its credentials").add_argument("name")

    g = group("credentials", "provider keys, sealed at rest")
    p = cmd(g, "add", credentials_add, "add a key (read from stdin, never argv)")
    p.add_argument("provider")
    p.add_argument("--label", required=True)
    p.add_argument("--weight", type=int, default=1)
    cmd(g, "list", credentials_list, "list credentials, keys masked").add_argument(
        "provider", nargs="?"
    )
    p = cmd(g, "test", credentials_test, "make a minimal real call with a key")
    p.add_argument("credential", help="PROVIDER/LABEL or an id")
    p.add_argument("--model")
    for name, run in (("disable", credentials_disable), ("enable", credentials_enable),
                      ("remove", credentials_remove)):  # fmt: skip
        cmd(g, name, run, f"{name} a credential").add_argument("credential")

    g = group("models", "the model catalogue")
    p = cmd(g, "add", models_add, "add a catalogue row")
    p.add_argument("model", help="provider/model")
    p.add_argument("--type", default="chat")
    p.add_argument("--context", type=int)
    p.add_argument("--display-name", default="")
    p.add_argument("--disabled", action="store_true")
    cmd(g, "list", models_list, "list the catalogue")
    p = cmd(g, "update", models_update, "change a catalogue row")
    p.add_argument("model")
    p.add_argument("--type")
    p.add_argument("--context", type=int)
    p.add_argument("--display-name")
    p.add_argument("--enabled", choices=("true", "false"))
    cmd(g, "remove", models_remove, "remove a catalogue row").add_argument("model")

    g = group("aliases", "public model names in front of provider/model chains")
    p = cmd(g, "set", aliases_set, "set an alias to one target or a fallback chain")
    p.add_argument("name")
    p.add_argument("targets", nargs="+")
    cmd(g, "list", aliases_list, "list aliases")
    cmd(g, "remove", aliases_remove, "remove an alias").add_argument("name")


class _State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.settings: Settings = settings_of(args)
        self.conn = database(args)
        self.rows = store.read(self.conn)
        self.catalog: Catalog = build(
            self.rows, self.settings.providers, None, strict=False, with_keys=False
        )

    def provider_row(self, name: str) -> dict[str, Any]:
        row = next((p for p in self.rows.providers if name in (p["name"], p["id"])), None)
        if row is None:
            if name in self.catalog.providers:
                raise UsageError(f"provider '{name}' comes from the config file; edit it there")
            raise UsageError(f"no provider '{name}'; see `hubproxy providers list`")
        return row

    def credential_row(self, ref: str) -> dict[str, Any]:
        provider, _, label = ref.partition("/")
        for row in self.rows.credentials:
            if row["id"] == ref or (row["provider"] == provider and row["label"] == label):
                return row
        raise UsageError(f"no credential '{ref}'; see `hubproxy credentials list`")

    def write(self, *ops: Op) -> None:
        apply(self.conn, list(ops))

    def aliases_still_valid(self, catalog: Catalog, what: str) -> None:
        try:
            validate.aliases(self.rows.aliases, providers=offer_map(catalog, catalog.models))
        except HubError as exc:
            raise UsageError(f"{what} would break an alias: {exc.message}") from None


def _master_key(settings: Settings) -> sealing.MasterKey:
    key = sealing.master_key(settings.secrets)
    if key is None:
        raise UsageError(
            "no master key to seal or open provider keys with: set HUBPROXY_SECRET_KEY or "
            "[secrets] key_file (make one with `hubproxy secrets gen-key`)"
        )
    return key


def _base_url(settings: Settings, url: str) -> str:
    allow = settings.security.allow_private_upstreams
    return asyncio.run(check_base_url(url, allow_private=allow))


def _provider_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.base_url is not None:
        body["base_url"] = args.base_url
    if args.header:
        body["headers"] = dict(h.partition("=")[::2] for h in args.header)
    if args.api_version is not None:
        body["api_version"] = args.api_version
    if args.connect_timeout is not None:
        body["connect_timeout_s"] = args.connect_timeout
    if args.idle_timeout is not None:
        body["idle_timeout_s"] = args.idle_timeout
    return body


def providers_add(args: argparse.Namespace) -> int:
    s = _State(args)
    values = validate.provider(
        {"name": args.name, "type": args.type, **_provider_body(args), "enabled": not args.disabled}
    )
    if values["base_url"]:
        values["base_url"] = _base_url(s.settings, values["base_url"])
    if values["name"] in s.catalog.providers:
        raise UsageError(f"a provider named '{values['name']}' exists already; pick another")
    s.write(store.insert_provider(f"prv_{secrets.token_hex(8)}", values))
    print(f"added provider {values['name']} ({values['type']})")
    return 0


def providers_list(args: argparse.Namespace) -> int:
    s = _State(args)
    table(
        ["name", "type", "base_url", "enabled", "source", "id"],
        [(p.name, p.type, p.base_url or "-", "yes" if p.enabled else "no", p.source, p.id)
         for p in sorted(s.catalog.providers.values(), key=lambda p: p.name)],
    )  # fmt: skip
    return 0


def providers_update(args: argparse.Namespace) -> int:
    s = _State(args)
    row = s.provider_row(args.name)
    body = _provider_body(args)
    if args.enabled is not None:
        body["enabled"] = args.enabled == "true"
    changes = validate.provider(body, partial=True)
    if changes.get("base_url"):
        changes["base_url"] = _base_url(s.settings, changes["base_url"])
    if not changes:
        raise UsageError("nothing to change: give --base-url, --header, --enabled ...")
    s.write(store.update_provider(row["id"], changes))
    print(f"updated provider {row['name']}")
    return 0


def providers_remove(args: argparse.Namespace) -> int:
    s = _State(args)
    row = s.provider_row(args.name)
    rest = {k: v for k, v in s.catalog.providers.items() if k != row["name"]}
    s.aliases_still_valid(Catalog(providers=rest, models=s.catalog.models), "removing it")
    s.write(*store.delete_provider(row["id"], row["name"]))
    print(f"removed provider {row['name']} and its credentials")
    return 0


def credentials_add(args: argparse.Namespace) -> int:
    s = _State(args)
    row = s.provider_row(args.provider)
    if sys.stdin.isatty():
        print(f"paste the key for {row['name']}/{args.label}, then Enter:", file=sys.stderr)
    values = validate.credential(
        {"label": args.label, "key": sys.stdin.readline(), "weight": args.weight}
    )
    key = _master_key(s.settings)
    other = next((c["key_id"] for c in s.rows.credentials if c["key_id"] != key.id), None)
    if other is not None:
        raise UsageError(
            f"stored credentials are sealed under master key {other}, not the given {key.id}; "
            "set HUBPROXY_SECRET_KEY to that key (or rotate first)"
        )
    cid = f"crd_{secrets.token_hex(8)}"
    sealed = key.seal(values["key"], credential_id=cid, provider_id=row["id"])
    s.write(
        store.insert_credential(
            cid, row["id"], label=values["label"], weight=values["weight"], sealed=sealed,
            hint=sealing.mask(values["key"]),
        )
    )  # fmt: skip
    print(f"added credential {row['name']}/{values['label']} ({sealing.mask(values['key'])})")
    return 0


def credentials_list(args: argparse.Namespace) -> int:
    s = _State(args)
    rows = [r for r in s.rows.credentials if args.provider in (None, r["provider"])]
    table(
        ["provider", "label", "key", "weight", "state", "last error", "disabled until", "id"],
        [(r["provider"], r["label"], r["hint"], r["weight"],
          r["state"] if r["enabled"] else "disabled (by hand)", r["last_error"] or "-",
          timestamp(r["resting_until"]), r["id"]) for r in rows],
    )  # fmt: skip
    return 0


def credentials_test(args: argparse.Namespace) -> int:
    s = _State(args)
    row = s.credential_row(args.credential)
    key = _master_key(s.settings)
    sealed = sealing.Sealed(row["nonce"], row["ciphertext"], row["key_id"])
    plain = key.open(sealed, credential_id=row["id"], provider_id=row["provider_id"])
    entry = s.catalog.providers[row["provider"]]
    model = pick_model(entry, s.catalog.offered(entry.name), args.model)
    if model is None:
        raise UsageError(f"{entry.name} has no catalogue model to test with; pass --model")

    async def call() -> ProbeResult:
        guard = GuardedResolver(
            exempt=config_hosts(p.base_url for p in s.settings.providers),
            allow_private=s.settings.security.allow_private_upstreams,
        )
        return await probe(entry, plain, model, resolver=guard)

    result = asyncio.run(call())
    outcome = "ok" if result.ok else f"failed: {result.error}"
    print(f"{entry.name}/{row['label']} with {model}: {outcome} "
          f"(status {result.status or '-'}, {result.latency_ms} ms)")  # fmt: skip
    return 0 if result.ok else 1


def _enable(args: argparse.Namespace, enabled: bool) -> int:
    s = _State(args)
    row = s.credential_row(args.credential)
    s.write(store.enable_credential(row["id"], enabled))
    print(f"{'enabled' if enabled else 'disabled'} {row['provider']}/{row['label']}")
    return 0


def credentials_disable(args: argparse.Namespace) -> int:
    return _enable(args, False)


def credentials_enable(args: argparse.Namespace) -> int:
    return _enable(args, True)


def credentials_remove(args: argparse.Namespace) -> int:
    s = _State(args)
    row = s.credential_row(args.credential)
    s.write(store.delete_credential(row["id"]))
    print(f"removed {row['provider']}/{row['label']}")
    return 0


def _model_row(s: _State, name: str) -> dict[str, Any]:
    row = next((m for m in s.rows.models if f"{m['provider']}/{m['model']}" == name), None)
    if row is None:
        raise UsageError(f"'{name}' is not in the catalogue; see `hubproxy models list`")
    return row


def models_add(args: argparse.Namespace) -> int:
    s = _State(args)
    values = validate.model(
        {"model": args.model, "type": args.type, "display_name": args.display_name,
         "context_window": args.context, "enabled": not args.disabled}
    )  # fmt: skip
    if values["provider"] not in s.catalog.providers:
        raise UsageError(f"no provider '{values['provider']}'; add it first (providers add)")
    s.write(store.insert_model(f"mdl_{secrets.token_hex(8)}", values))
    print(f"added {args.model}")
    return 0


def models_list(args: argparse.Namespace) -> int:
    s = _State(args)
    table(
        ["model", "type", "display name", "context", "enabled"],
        [(f"{m['provider']}/{m['model']}", m["type"], m["display_name"] or "-",
          m["context_window"] or "-", "yes" if m["enabled"] else "no") for m in s.rows.models],
    )  # fmt: skip
    return 0


def models_update(args: argparse.Namespace) -> int:
    s = _State(args)
    row = _model_row(s, args.model)
    body: dict[str, Any] = {}
    for flag, name in (("type", "type"), ("context", "context_window"),
                       ("display_name", "display_name")):  # fmt: skip
        if getattr(args, flag) is not None:
            body[name] = getattr(args, flag)
    if args.enabled is not None:
        body["enabled"] = args.enabled == "true"
    changes = validate.model(body, partial=True)
    if not changes:
        raise UsageError("nothing to change: give --type, --context, --enabled ...")
    if changes.get("enabled") is False:
        after = tuple(
            replace(m, enabled=False) if m.id == row["id"] else m for m in s.catalog.models
        )
        s.aliases_still_valid(Catalog(providers=s.catalog.providers, models=after), "disabling it")
    s.write(store.update_model(row["id"], changes))
    print(f"updated {args.model}")
    return 0


def models_remove(args: argparse.Namespace) -> int:
    s = _State(args)
    row = _model_row(s, args.model)
    after = tuple(m for m in s.catalog.models if m.id != row["id"])
    s.aliases_still_valid(Catalog(providers=s.catalog.providers, models=after), "removing it")
    s.write(store.delete_model(row["id"]))
    print(f"removed {args.model}")
    return 0


def _set_aliases(s: _State, doc: dict[str, list[str]]) -> None:
    checked = validate.aliases(doc, providers=offer_map(s.catalog, s.catalog.models))
    s.write(*store.replace_aliases(checked))


def aliases_set(args: argparse.Namespace) -> int:
    s = _State(args)
    _set_aliases(s, {**s.rows.aliases, args.name: list(args.targets)})
    print(f"{args.name} → {', '.join(args.targets)}")
    return 0


def aliases_list(args: argparse.Namespace) -> int:
    s = _State(args)
    table(["alias", "targets"], [(n, ", ".join(t)) for n, t in s.rows.aliases.items()])
    return 0


def aliases_remove(args: argparse.Namespace) -> int:
    s = _State(args)
    if args.name not in s.rows.aliases:
        raise UsageError(f"no alias '{args.name}'; see `hubproxy aliases list`")
    _set_aliases(s, {k: v for k, v in s.rows.aliases.items() if k != args.name})
    print(f"removed alias {args.name}")
    return 0
