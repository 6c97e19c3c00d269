"""The model catalogue and the aliases over HTTP (admins and owners): catalogue rows with
their passive availability, and the alias document, replaced whole."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from hubproxy.api import catalog_shapes as shapes
from hubproxy.api.catalog_admin import (
    Conflict,
    alias_doc,
    begin,
    commit,
    new_id,
    sent,
    still_valid,
)
from hubproxy.api.schema import Api
from hubproxy.api.user import reply
from hubproxy.catalog import validate
from hubproxy.catalog.live import LiveCatalog
from hubproxy.catalog.snapshot import Catalog, ModelEntry, offer_map
from hubproxy.errors import BadRequest, NotFound
from hubproxy.store import catalog as store

api = Api()


def _view(live: LiveCatalog, m: ModelEntry) -> dict[str, Any]:
    return {
        "id": m.id, "model": m.name, "provider": m.provider, "type": m.type,
        "display_name": m.display_name, "context_window": m.context_window,
        "enabled": m.enabled, "source": "database", "availability": live.health.view(m.name),
    }  # fmt: skip


def _row(cat: Catalog, mid: str) -> ModelEntry:
    found = next((m for m in cat.models if m.id == mid), None)
    if found is None:
        raise NotFound(f"No catalogue model '{mid}'.", code="model_not_found")
    return found


@api.get("/api/admin/models", ok=shapes.ModelList, admin=True)
async def list_models(request: web.Request) -> web.Response:
    """The catalogue with each model's availability, and the config file's allow-lists."""
    live = begin(request)
    cat = live.current
    data = [_view(live, m) for m in cat.models]
    rows = {m.name for m in cat.models}
    for entry in cat.providers.values():  # the config file's allow-lists, read-only
        for model in entry.models:
            name = f"{entry.name}/{model}"
            if name not in rows:
                data.append(
                    {"id": None, "model": name, "provider": entry.name, "type": "chat",
                     "display_name": "", "context_window": None, "enabled": True,
                     "source": "config", "availability": live.health.view(name)}
                )  # fmt: skip
    return reply({"object": "list", "data": data})


@api.post("/api/admin/models", ok=shapes.CatalogModel, admin=True, errors=(409,))
async def create_model(request: web.Request, body: shapes.NewModel) -> web.Response:
    """Add a model to the catalogue."""
    live = begin(request)
    values = validate.model(sent(body))
    if values["provider"] not in live.current.providers:
        raise BadRequest(
            f"'model' names provider '{values['provider']}', which does not exist. Fix: add "
            "it first (hubproxy providers add).",
            code="unknown_provider",
            param="model",
        )
    name = f"{values['provider']}/{values['model']}"
    if any(m.name == name for m in live.current.models):
        raise Conflict(
            f"'{name}' is in the catalogue already; change it with PATCH.",
            code="duplicate_model",
            param="model",
        )
    mid = new_id("mdl")
    cat = await commit(request, store.insert_model(mid, values))
    return reply(_view(live, _row(cat, mid)))


@api.patch("/api/admin/models/{id}", ok=shapes.CatalogModel, admin=True, errors=(409,))
async def update_model(request: web.Request, body: shapes.ModelChange) -> web.Response:
    """Change a catalogue row; what is not sent stays."""
    live = begin(request)
    row = _row(live.current, request.match_info["id"])
    changes = validate.model(sent(body), partial=True)
    if changes.get("enabled") is False and row.enabled:
        after = [replace(m, enabled=False) if m.id == row.id else m for m in live.current.models]
        still_valid(
            await alias_doc(request), offer_map(live.current, after), f"Disabling '{row.name}'"
        )
    if not changes:
        return reply(_view(live, row))
    cat = await commit(request, store.update_model(row.id, changes))
    return reply(_view(live, _row(cat, row.id)))


@api.delete("/api/admin/models/{id}", ok=shapes.Deleted, admin=True, errors=(409,))
async def delete_model(request: web.Request) -> web.Response:
    """Remove a catalogue row; refused while an alias needs it."""
    live = begin(request)
    row = _row(live.current, request.match_info["id"])
    after = [m for m in live.current.models if m.id != row.id]
    still_valid(await alias_doc(request), offer_map(live.current, after), f"Removing '{row.name}'")
    await commit(request, store.delete_model(row.id))
    return reply({"id": row.id, "model": row.name, "deleted": True})


def _aliases_view(cat: Catalog, doc: dict[str, list[str]]) -> dict[str, Any]:
    resolved = {name: list(cat.aliases.get(name, ())) for name in doc}
    return {"aliases": doc, "resolved": resolved}


@api.get("/api/admin/aliases", ok=shapes.Aliases, admin=True)
async def get_aliases(request: web.Request) -> web.Response:
    """The alias document, and what each alias resolves to."""
    live = begin(request)
    return reply(_aliases_view(live.current, await alias_doc(request)))


@api.put("/api/admin/aliases", ok=shapes.Aliases, admin=True)
async def put_aliases(request: web.Request, body: shapes.AliasDocument) -> web.Response:
    """Replace the whole alias document: {"aliases": {"fast": ["a/b", "c/d"], ...}}."""
    live = begin(request)
    offers = offer_map(live.current, live.current.models)
    doc = validate.aliases(sent(body)["aliases"], providers=offers)
    cat = await commit(request, *store.replace_aliases(doc))
    return reply(_aliases_view(cat, doc))
