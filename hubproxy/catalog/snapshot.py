"""The immutable Catalog: providers, credential pools, models and aliases, in memory.

`build()` makes one from the database rows and the config file's providers, opening each
sealed key with the master key. The request path only ever reads a Catalog: `resolve()` and
`pool()` do no I/O. A new snapshot takes over the Credential objects of the one before by id,
so cooling, disabling and counters survive a reload.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import structlog

from hubproxy.catalog import validate
from hubproxy.catalog.credentials import ACTIVE, Clock, Credential, CredentialPool, OnChange
from hubproxy.catalog.names import check_model_name
from hubproxy.catalog.sealing import MasterKey, Sealed, SealError, require
from hubproxy.config import ProviderSettings
from hubproxy.errors import BadRequest, NotFound
from hubproxy.gateway.routing import Route
from hubproxy.store.catalog import Rows

log = structlog.get_logger("hubproxy.catalog")


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    id: str
    name: str
    type: str
    base_url: str
    headers: Mapping[str, str]
    api_version: str
    connect_timeout_s: float
    idle_timeout_s: float
    enabled: bool
    source: str  # "config" (read-only in the API) or "database"
    models: tuple[str, ...] = ()  # the config file's allow-list

    def settings(self, keys: Sequence[str] = ()) -> ProviderSettings:
        """As the wire formats (providers.make) take it."""
        from hubproxy.config import Secret

        return ProviderSettings(
            name=self.name, type=self.type, base_url=self.base_url,
            api_keys=tuple(Secret(k) for k in keys), models=self.models,
            headers=dict(self.headers), api_version=self.api_version,
            connect_timeout_s=self.connect_timeout_s, idle_timeout_s=self.idle_timeout_s,
        )  # fmt: skip

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "type": self.type, "base_url": self.base_url,
            "headers": dict(self.headers), "api_version": self.api_version,
            "connect_timeout_s": self.connect_timeout_s, "idle_timeout_s": self.idle_timeout_s,
            "enabled": self.enabled, "source": self.source, "models": list(self.models),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    provider: str
    model: str
    type: str
    display_name: str
    context_window: int | None
    enabled: bool

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class Catalog:
    providers: Mapping[str, ProviderEntry] = field(default_factory=dict)
    pools: Mapping[str, CredentialPool] = field(default_factory=dict)
    models: tuple[ModelEntry, ...] = ()
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    credentials: Mapping[str, Credential] = field(default_factory=dict)  # by id, enabled ones
    # What each provider offers (None: any valid name), worked out once per snapshot.
    offers: Mapping[str, frozenset[str] | None] = field(default_factory=dict)

    def resolve(self, name: Any) -> list[Route]:
        """The targets to try for a requested model, in order: an alias's chain, or the one
        provider/model. A 400 for an unsafe name, a 404 for one that is not offered."""
        check_model_name(name)
        chain = self.aliases.get(name)
        if chain is not None:
            targets = [self._target(t) for t in chain]
            usable = [t for t in targets if t is not None]
            if not usable:
                raise NotFound(
                    f"The alias '{name}' has no enabled target now.",
                    code="model_not_found",
                    param="model",
                )
            return usable
        target = self._target(name)
        if target is None:
            provider, sep, model = name.partition("/")
            entry = self.providers.get(provider)
            if not sep or not model or entry is None or not entry.enabled:
                known = ", ".join(sorted(p for p, e in self.providers.items() if e.enabled))
                raise NotFound(
                    f"The model '{name}' does not exist: name it as provider/model, with a "
                    f"provider of {known or '(none configured)'}, or an alias.",
                    code="model_not_found",
                    param="model",
                )
            raise NotFound(
                f"The model '{name}' is not offered by provider '{provider}'.",
                code="model_not_found",
                param="model",
            )
        return [target]

    def _target(self, name: str) -> Route | None:
        provider, sep, model = name.partition("/")
        entry = self.providers.get(provider)
        if not sep or not model or entry is None or not entry.enabled:
            return None
        offered = self.offered(provider)
        if offered is not None and model not in offered:
            return None
        return Route(provider, model)

    def offered(self, provider: str) -> frozenset[str] | None:
        """The models a provider offers, or None when it passes any valid model name."""
        if provider in self.offers:
            return self.offers[provider]
        return offered_by(self.providers.get(provider), self.models)

    def pool(self, provider: str) -> CredentialPool:
        return self.pools.get(provider) or CredentialPool()

    def listed(self) -> list[dict[str, Any]]:
        """What GET /v1/models shows: the enabled catalogue, the config allow-lists, then the
        aliases."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for m in self.models:
            entry = self.providers.get(m.provider)
            if m.enabled and entry is not None and entry.enabled and m.name not in seen:
                seen.add(m.name)
                out.append({"id": m.name, "type": m.type, "owned_by": m.provider})
        for entry in self.providers.values():
            for model in entry.models if entry.enabled else ():
                if (name := f"{entry.name}/{model}") not in seen:
                    seen.add(name)
                    out.append({"id": name, "type": "chat", "owned_by": entry.name})
        out += [{"id": a, "type": "alias", "owned_by": "hubproxy"} for a in self.aliases]
        return out


def offered_by(entry: ProviderEntry | None, models: Iterable[ModelEntry]) -> frozenset[str] | None:
    """What a provider offers: its enabled catalogue rows and its config allow-list; None
    when it has neither (any valid model name passes). Only disabled rows: nothing."""
    if entry is None:
        return frozenset()
    rows = [m for m in models if m.provider == entry.name]
    if not rows and not entry.models:
        return None
    return frozenset(m.model for m in rows if m.enabled) | frozenset(entry.models)


def offer_map(
    cat: Catalog, models: Iterable[ModelEntry], skip: str = ""
) -> dict[str, frozenset[str]]:
    """Provider → the models it offers, as validate.aliases takes it (empty: any)."""
    models = list(models)
    out: dict[str, frozenset[str]] = {}
    for name, entry in cat.providers.items():
        if name == skip or not entry.enabled:
            continue
        offered = offered_by(entry, models)
        # validate.aliases reads "empty" as "any model": a provider that offers nothing
        # (only disabled rows) must not look open.
        out[name] = frozenset() if offered is None else (offered or frozenset({"\x00"}))
    return out


def config_entry(p: ProviderSettings) -> ProviderEntry:
    return ProviderEntry(
        id=f"config:{p.name}", name=p.name, type=p.type, base_url=p.base_url,
        headers=MappingProxyType(dict(p.headers)), api_version=p.api_version,
        connect_timeout_s=p.connect_timeout_s, idle_timeout_s=p.idle_timeout_s, enabled=True,
        source="config", models=p.models,
    )  # fmt: skip


def build(
    rows: Rows,
    config: Iterable[ProviderSettings],
    key: MasterKey | None,
    *,
    previous: Catalog | None = None,
    strict: bool = True,
    with_keys: bool = True,
    clock: Clock = time.time,
    on_change: OnChange | None = None,
) -> Catalog:
    """A Catalog from the rows and the config providers. `strict` (at start): a key that does
    not open refuses the whole load, naming which. Otherwise (a reload while serving) that
    credential keeps the key this process holds for it, or is left out, and it is logged.
    Without `with_keys` (CLI checks), no key is opened and the pools are empty."""
    old = previous.credentials if previous is not None else {}
    providers: dict[str, ProviderEntry] = {}
    pools: dict[str, list[Credential]] = {}
    for p in config:
        providers[p.name] = config_entry(p)
        pools[p.name] = [
            _reuse(old, f"config:{p.name}:{i}", p.name, f"config-{i + 1}", 1, k.reveal())
            for i, k in enumerate(p.api_keys)
        ]
    for row in rows.providers:
        if row["name"] in providers:  # a config entry of the same name wins; say so
            log.warning("provider_shadowed", provider=row["name"], by="config")
            continue
        providers[row["name"]] = ProviderEntry(
            id=row["id"], name=row["name"], type=row["type"], base_url=row["base_url"],
            headers=MappingProxyType(dict(row["headers"])), api_version=row["api_version"],
            connect_timeout_s=row["connect_timeout_s"], idle_timeout_s=row["idle_timeout_s"],
            enabled=row["enabled"], source="database",
        )  # fmt: skip
        pools[row["name"]] = []
    if rows.credentials and strict and with_keys:
        key = require(key, len(rows.credentials))
    for row in rows.credentials if with_keys else ():
        plain = _open(row, key, old, strict)
        if plain is None or not row["enabled"] or row["provider"] not in pools:
            continue
        cred = _reuse(old, row["id"], row["provider"], row["label"], row["weight"], plain)
        pools[row["provider"]].append(cred)
    models = tuple(
        ModelEntry(
            id=m["id"],
            provider=m["provider"],
            model=m["model"],
            type=m["type"],
            display_name=m["display_name"],
            context_window=m["context_window"],
            enabled=m["enabled"],
        )
        for m in rows.models
    )
    aliases = _aliases(rows.aliases)
    by_id = {c.id: c for creds in pools.values() for c in creds}
    return Catalog(
        providers=MappingProxyType(providers),
        pools=MappingProxyType(
            {n: CredentialPool(c, clock=clock, on_change=on_change) for n, c in pools.items()}
        ),
        models=models,
        aliases=MappingProxyType(aliases),
        credentials=MappingProxyType(by_id),
        offers=MappingProxyType({n: offered_by(e, models) for n, e in providers.items()}),
    )


def _open(
    row: Mapping[str, Any], key: MasterKey | None, old: Mapping[str, Credential], strict: bool
) -> str | None:
    sealed = Sealed(nonce=row["nonce"], ciphertext=row["ciphertext"], key_id=row["key_id"])
    try:
        if key is None:
            raise SealError("no master key is given")
        return key.open(sealed, credential_id=row["id"], provider_id=row["provider_id"])
    except SealError as exc:
        if strict:
            raise
        held = old.get(row["id"])
        log.error(
            "credential_unreadable",
            credential=row["id"],
            provider=row["provider"],
            error=str(exc),
            keeps_key_held=held is not None,
        )
        return held.key if held is not None else None


def _reuse(
    old: Mapping[str, Credential], cid: str, provider: str, label: str, weight: int, key: str
) -> Credential:
    cred = old.get(cid)
    if cred is None:
        return Credential(id=cid, provider=provider, label=label, weight=weight, key=key)
    cred.label, cred.weight = label, weight
    if cred.key != key:  # a new key: what was learnt of the old one no longer holds
        cred.key, cred.state, cred.until, cred.strikes, cred.last_error = key, ACTIVE, 0.0, 0, None
    return cred


def _aliases(doc: Mapping[str, list[str]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name in doc:
        try:
            out[name] = tuple(validate.expand(name, doc))
        except BadRequest as exc:  # written by hand into the database: skip, say so
            log.error("alias_invalid", alias=name, error=exc.message)
    return out
