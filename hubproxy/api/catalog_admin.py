"""The control plane over HTTP, for admins and owners: providers, credentials, the model
catalogue and aliases under /api/admin. To a member none of it exists (404).

Every write goes through the one writer, as one unit (nothing partial), and the server's own
snapshot is reloaded before the answer; other servers follow the "catalog" revision. A key
is write-only: answers show it masked.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.resolver import ThreadedResolver

from hubproxy.api import catalog_shapes as shapes
from hubproxy.api.schema import Api, Struct
from hubproxy.api.state import CATALOG, READER, SETTINGS, WRITER
from hubproxy.api.user import reply
from hubproxy.catalog import sealing, validate
from hubproxy.catalog.live import LiveCatalog
from hubproxy.catalog.names import check_model_name
from hubproxy.catalog.probe import pick_model, probe
from hubproxy.catalog.snapshot import Catalog, ProviderEntry, offer_map
from hubproxy.catalog.ssrf import GuardedResolver, check_base_url, config_hosts
from hubproxy.errors import BadRequest, Forbidden, HubError, NotFound, ServiceUnavailable
from hubproxy.store import catalog as store
from hubproxy.store.ops import Op

api = Api()


class Conflict(HubError):
    status = 409
    type = "invalid_request_error"
    default_code = "conflict"


def install(app: web.Application) -> None:
    """Register the routes (the catalogue itself is a core resource: see app.py)."""
    from hubproxy.api import catalog_models  # its handlers use the helpers here

    api.install(app)
    catalog_models.api.install(app)


# --- helpers ---------------------------------------------------------------------------


def begin(request: web.Request) -> LiveCatalog:
    """The live catalogue (the route checked the caller is an admin)."""
    return request.app[CATALOG]


def sent(body: Struct) -> dict[str, Any]:
    """The fields of a decoded body that were sent (or have a default), for the checks in
    hubproxy.catalog.validate."""
    out: dict[str, Any] = msgspec.to_builtins(body)
    return out


async def commit(request: web.Request, *ops: Op) -> Catalog:
    """Write `ops` as one unit, then reload this server's snapshot."""
    try:
        await request.app[WRITER].commit(*ops)
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"That conflicts with what is stored: {exc}.") from None
    return await request.app[CATALOG].load(request.app[READER])


def _provider(cat: Catalog, ref: str) -> ProviderEntry:
    entry = cat.providers.get(ref) or next((p for p in cat.providers.values() if p.id == ref), None)
    if entry is None:
        raise NotFound(f"No provider '{ref}'.", code="provider_not_found")
    return entry


def _writable(entry: ProviderEntry) -> None:
    if entry.source == "config":
        raise Forbidden(
            f"Provider '{entry.name}' comes from the config file and is read-only here; "
            "change it in that file.",
            code="read_only",
        )


async def _base_url(request: web.Request, url: str) -> str:
    allow = request.app[SETTINGS].security.allow_private_upstreams
    return await check_base_url(url, allow_private=allow, resolver=ThreadedResolver())


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


async def alias_doc(request: web.Request) -> dict[str, list[str]]:
    return (await store.read_async(request.app[READER])).aliases


def still_valid(doc: dict[str, list[str]], offers: dict[str, frozenset[str]], what: str) -> None:
    """Refuse a change that would leave an alias pointing at nothing."""
    try:
        validate.aliases(doc, providers=offers)
    except BadRequest as exc:
        raise Conflict(
            f"{what} would break an alias: {exc.message} Change the alias first.",
            code="alias_in_use",
            param=exc.param,
        ) from None


def _credential_views(live: LiveCatalog, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = time.time()
    out = []
    for row in rows:
        held = live.current.credentials.get(row["id"])
        if held is not None and row["enabled"]:
            view = held.view(now)
        else:
            until = row["resting_until"]
            view = {
                "id": row["id"], "label": row["label"], "key": row["hint"],
                "weight": row["weight"],
                "state": "disabled" if not row["enabled"] else row["state"],
                "last_error": row["last_error"] if row["enabled"] else "disabled by an admin",
                "last_used_at": row["last_used_at"],
                "resting_until": until if until and until > now * 1000 else None,
                "successes_last_hour": 0, "failures_last_hour": 0,
            }  # fmt: skip
        out.append({**view, "provider": row["provider"], "enabled": row["enabled"]})
    return out


def _config_credentials(live: LiveCatalog, entry: ProviderEntry) -> list[dict[str, Any]]:
    now = time.time()
    pool = live.current.pool(entry.name)
    return [
        {**c.view(now), "provider": entry.name, "enabled": True, "source": "config"}
        for c in pool.credentials
    ]


async def _credential_rows(request: web.Request) -> list[dict[str, Any]]:
    return (await store.read_async(request.app[READER])).credentials


# --- providers ---------------------------------------------------------------------------


@api.get("/api/admin/providers", ok=shapes.ProviderList, admin=True)
async def list_providers(request: web.Request) -> web.Response:
    """Every provider, from the config file (read-only here) and the database."""
    live = begin(request)
    data = [p.view() for p in live.current.providers.values()]
    return reply({"object": "list", "data": sorted(data, key=lambda p: p["name"])})


@api.post("/api/admin/providers", ok=shapes.Provider, admin=True, errors=(409,))
async def create_provider(request: web.Request, body: shapes.NewProvider) -> web.Response:
    """Add a provider; servers pick it up within 2 s."""
    live = begin(request)
    values = validate.provider(sent(body))
    if values["base_url"]:
        values["base_url"] = await _base_url(request, values["base_url"])
    if values["name"] in live.current.providers:
        raise Conflict(
            f"A provider named '{values['name']}' exists already; pick another name.",
            code="duplicate_name",
            param="name",
        )
    pid = new_id("prv")
    cat = await commit(request, store.insert_provider(pid, values))
    return reply(_provider(cat, pid).view())


@api.get("/api/admin/providers/{id}", ok=shapes.ProviderDetail, admin=True)
async def get_provider(request: web.Request) -> web.Response:
    """A provider (by id or name) with its credentials, keys masked."""
    live = begin(request)
    entry = _provider(live.current, request.match_info["id"])
    if entry.source == "config":
        creds = _config_credentials(live, entry)
    else:
        rows = [r for r in await _credential_rows(request) if r["provider_id"] == entry.id]
        creds = _credential_views(live, rows)
    return reply({**entry.view(), "credentials": creds})


@api.patch("/api/admin/providers/{id}", ok=shapes.Provider, admin=True, errors=(403, 409))
async def update_provider(request: web.Request, body: shapes.ProviderChange) -> web.Response:
    """Change a provider (by id or name); what is not sent stays."""
    live = begin(request)
    entry = _provider(live.current, request.match_info["id"])
    _writable(entry)
    changes = validate.provider(sent(body), partial=True)
    if changes.get("name", entry.name) != entry.name:
        raise BadRequest(
            "'name' cannot change: catalogue rows and aliases refer to it. Add a new provider.",
            param="name",
        )
    changes.pop("name", None)
    if changes.get("base_url"):
        changes["base_url"] = await _base_url(request, changes["base_url"])
    if not changes.get("base_url", entry.base_url) and changes.get("type", entry.type) != "fake":
        raise BadRequest("'base_url' is required for this type of provider.", param="base_url")
    if changes.get("enabled") is False:
        still_valid(
            await alias_doc(request),
            offer_map(live.current, live.current.models, skip=entry.name),
            f"Disabling provider '{entry.name}'",
        )
    if not changes:
        return reply(entry.view())
    cat = await commit(request, store.update_provider(entry.id, changes))
    return reply(_provider(cat, entry.id).view())


@api.delete("/api/admin/providers/{id}", ok=shapes.Deleted, admin=True, errors=(403, 409))
async def delete_provider(request: web.Request) -> web.Response:
    """Remove a provider and its credentials; refused while an alias needs it."""
    live = begin(request)
    entry = _provider(live.current, request.match_info["id"])
    _writable(entry)
    still_valid(
        await alias_doc(request),
        offer_map(live.current, live.current.models, skip=entry.name),
        f"Removing provider '{entry.name}'",
    )
    await commit(request, *store.delete_provider(entry.id, entry.name))
    return reply({"id": entry.id, "name": entry.name, "deleted": True})


# --- credentials -------------------------------------------------------------------------


@api.get("/api/admin/providers/{id}/credentials", ok=shapes.CredentialList, admin=True)
async def list_credentials(request: web.Request) -> web.Response:
    """A provider's credentials: state, last error, use in the last hour; keys masked."""
    live = begin(request)
    entry = _provider(live.current, request.match_info["id"])
    if entry.source == "config":
        return reply({"object": "list", "data": _config_credentials(live, entry)})
    rows = [r for r in await _credential_rows(request) if r["provider_id"] == entry.id]
    return reply({"object": "list", "data": _credential_views(live, rows)})


def _sealing_key(live: LiveCatalog, rows: list[dict[str, Any]]) -> sealing.MasterKey:
    if live.key is None:
        raise ServiceUnavailable(
            "This server has no master key, so it cannot seal a credential. Fix: set "
            "HUBPROXY_SECRET_KEY (or [secrets] key_file) and restart it.",
            code="no_master_key",
        )
    other = next((r["key_id"] for r in rows if r["key_id"] != live.key.id), None)
    if other is not None:
        raise Conflict(
            f"Stored credentials are sealed under master key {other}, this server holds "
            f"{live.key.id} (keys were rotated). Fix: restart it with the current key.",
            code="master_key_rotated",
        )
    return live.key


@api.post(
    "/api/admin/providers/{id}/credentials", ok=shapes.Credential, admin=True,
    errors=(403, 409, 503),
)  # fmt: skip
async def create_credential(request: web.Request, body: shapes.NewCredential) -> web.Response:
    """Add a credential; its key is sealed at rest and never shown again."""
    live = begin(request)
    entry = _provider(live.current, request.match_info["id"])
    _writable(entry)
    values = validate.credential(sent(body))
    rows = await _credential_rows(request)
    key = _sealing_key(live, rows)
    if any(r["provider_id"] == entry.id and r["label"] == values["label"] for r in rows):
        raise Conflict(
            f"Provider '{entry.name}' has a credential labelled '{values['label']}' already; "
            "pick another label.",
            code="duplicate_label",
            param="label",
        )
    cid = new_id("crd")
    sealed = key.seal(values["key"], credential_id=cid, provider_id=entry.id)
    op = store.insert_credential(
        cid, entry.id, label=values["label"], weight=values["weight"], sealed=sealed,
        hint=sealing.mask(values["key"]),
    )  # fmt: skip
    await commit(request, op)
    return await _one_credential(request, cid)


async def _one_credential(request: web.Request, cid: str) -> web.Response:
    rows = [r for r in await _credential_rows(request) if r["id"] == cid]
    if not rows:
        raise NotFound(f"No credential '{cid}'.", code="credential_not_found")
    return reply(_credential_views(request.app[CATALOG], rows)[0])


async def _stored_credential(request: web.Request) -> tuple[dict[str, Any], list[Any]]:
    rows = await _credential_rows(request)
    cid = request.match_info["id"]
    row = next((r for r in rows if r["id"] == cid), None)
    if row is None:
        raise NotFound(f"No credential '{cid}'.", code="credential_not_found")
    return row, rows


@api.patch("/api/admin/credentials/{id}", ok=shapes.Credential, admin=True, errors=(409, 503))
async def update_credential(request: web.Request, body: shapes.CredentialChange) -> web.Response:
    """Change a credential: label, weight, enabled, or a new key (sealed)."""
    live = begin(request)
    row, rows = await _stored_credential(request)
    changes = validate.credential(sent(body), partial=True)
    ops: list[Op] = []
    if "key" in changes:
        key = _sealing_key(live, rows)
        plain = changes.pop("key")
        sealed = key.seal(plain, credential_id=row["id"], provider_id=row["provider_id"])
        ops.append(store.reseal_credential(row["id"], sealed=sealed, hint=sealing.mask(plain)))
    if "enabled" in changes:
        ops.append(store.enable_credential(row["id"], changes.pop("enabled")))
    if changes:
        ops.append(store.update_credential(row["id"], changes))
    if ops:
        await commit(request, *ops)
    return await _one_credential(request, row["id"])


@api.delete("/api/admin/credentials/{id}", ok=shapes.Deleted, admin=True, errors=(409,))
async def delete_credential(request: web.Request) -> web.Response:
    """Remove a credential."""
    begin(request)
    row, _ = await _stored_credential(request)
    await commit(request, store.delete_credential(row["id"]))
    return reply({"id": row["id"], "deleted": True})


@api.post("/api/admin/credentials/{id}/test", ok=shapes.ProbeAnswer, admin=True, errors=(409,))
async def test_credential(request: web.Request, body: shapes.CredentialTest | None) -> web.Response:
    """Make a real minimal call with a credential; its state follows the answer."""
    live = begin(request)
    model_sent = None if body is None or isinstance(body.model, msgspec.UnsetType) else body.model
    cat = live.current
    cid = request.match_info["id"]
    cred = cat.credentials.get(cid)
    if cred is None:
        await _stored_credential(request)  # 404 if it does not exist at all
        raise Conflict(
            f"Credential '{cid}' is disabled; enable it before testing it.",
            code="credential_disabled",
        )
    entry = cat.providers[cred.provider]
    model = pick_model(entry, cat.offered(entry.name), model_sent)
    if model is None:
        raise BadRequest(
            f"Provider '{entry.name}' has no catalogue model to test with; name one: "
            '{"model": "..."}.',
            param="model",
        )
    if model_sent is not None:
        check_model_name(model)
    settings = request.app[SETTINGS]
    guard = GuardedResolver(
        exempt=config_hosts(p.base_url for p in settings.providers),
        allow_private=settings.security.allow_private_upstreams,
    )
    result = await probe(entry, cred.key, model, resolver=guard)
    pool = cat.pool(entry.name)
    if result.ok:
        pool.succeeded(cred)
    else:
        pool.failed(cred, result.status, result.retry_after_s)
    live.health.observe(f"{entry.name}/{model}", result.ok, result.latency_ms, result.error)
    return reply({**result.view(), "model": model, "credential": cred.view(time.time())})
