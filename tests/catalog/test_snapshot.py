"""The Catalog snapshot: resolve() for names, aliases and allow-lists; model-name checks;
alias validation; pools that keep their state across snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from hubproxy.catalog import validate
from hubproxy.catalog.credentials import COOLING
from hubproxy.catalog.names import check_model_name
from hubproxy.catalog.sealing import MasterKey, SealError
from hubproxy.catalog.snapshot import build
from hubproxy.config import ProviderSettings, Secret
from hubproxy.errors import BadRequest, NotFound
from hubproxy.gateway.routing import Route
from hubproxy.store.catalog import Rows

KEY = MasterKey(bytes(32))
CONFIG = (
    ProviderSettings(name="demo", type="fake", models=("echo",)),
    ProviderSettings(
        name="cfg", type="openai", base_url="https://x", api_keys=(Secret("sk-cfg-1234567890"),)
    ),
)


def provider(pid: str, name: str, enabled: bool = True) -> dict[str, Any]:
    return {
        "id": pid,
        "name": name,
        "type": "openai",
        "base_url": "https://api.example.com",
        "headers": {},
        "api_version": "",
        "connect_timeout_s": 5.0,
        "idle_timeout_s": 60.0,
        "enabled": enabled,
    }


def credential(cid: str, pid: str, name: str, key: str, weight: int = 1) -> dict[str, Any]:
    s = KEY.seal(key, credential_id=cid, provider_id=pid)
    return {
        "id": cid,
        "provider_id": pid,
        "provider": name,
        "label": cid,
        "weight": weight,
        "enabled": True,
        "nonce": s.nonce,
        "ciphertext": s.ciphertext,
        "key_id": s.key_id,
    }


def model(name: str, enabled: bool = True) -> dict[str, Any]:
    p, _, m = name.partition("/")
    return {
        "id": f"mdl_{m}",
        "provider": p,
        "model": m,
        "type": "chat",
        "display_name": "",
        "context_window": None,
        "enabled": enabled,
    }


ROWS = Rows(
    providers=[
        provider("prv_1", "openai"),
        provider("prv_2", "groq"),
        provider("prv_3", "off", False),
    ],
    credentials=[credential("crd_1", "prv_1", "openai", "sk-openai-aaaaaaaaaa", 3)],
    models=[model("openai/gpt-4o-mini"), model("openai/old", enabled=False)],
    aliases={
        "fast": ["groq/llama-3.1-8b-instant", "openai/gpt-4o-mini"],
        "stable": ["fast"],
        "one": ["openai/gpt-4o-mini"],
    },
)


def test_resolve_names_aliases_and_allow_lists() -> None:
    cat = build(ROWS, CONFIG, KEY)
    assert cat.resolve("openai/gpt-4o-mini") == [Route("openai", "gpt-4o-mini")]
    assert cat.resolve("groq/anything-goes") == [Route("groq", "anything-goes")]  # no rows
    assert [str(t) for t in cat.resolve("stable")] == [
        "groq/llama-3.1-8b-instant",
        "openai/gpt-4o-mini",
    ]
    assert cat.resolve("demo/echo") == [Route("demo", "echo")]
    for missing in ("openai/gpt-5", "openai/old", "demo/other", "off/x", "nobody/x", "nothing"):
        with pytest.raises(NotFound) as err:
            cat.resolve(missing)
        assert err.value.param == "model" and err.value.code == "model_not_found"
    listed = [m["id"] for m in cat.listed()]
    assert listed[:2] == ["openai/gpt-4o-mini", "demo/echo"]
    assert sorted(listed[2:]) == ["fast", "one", "stable"]
    assert cat.pool("openai").order()[0].key == "sk-openai-aaaaaaaaaa"
    assert cat.pool("cfg").order()[0].key == "sk-cfg-1234567890"


@pytest.mark.parametrize(
    "name",
    [
        "gemini/../../v1beta/files",
        "gemini/x?alt=sse",
        "a/b#frag",
        "a/b%2e%2e",
        "a/b\x00",
        "a/b\n",
        "/a/b",
        "a\\b",
        "a/b c",
        "",
        "x" * 300,
    ],
)
def test_unsafe_model_names_are_a_400(name: str) -> None:
    cat = build(ROWS, CONFIG, KEY)
    with pytest.raises(BadRequest) as err:
        cat.resolve(name)
    assert err.value.param == "model" and err.value.status == 400
    with pytest.raises(BadRequest):
        check_model_name(name)
    assert check_model_name("models/gemini-1.5-pro:latest") == "models/gemini-1.5-pro:latest"


def test_pools_keep_their_state_across_snapshots() -> None:
    first = build(ROWS, CONFIG, KEY)
    cred = first.credentials["crd_1"]
    first.pool("openai").failed(cred, 429, 60.0)
    again = build(ROWS, CONFIG, KEY, previous=first)
    assert again.credentials["crd_1"] is cred and cred.state == COOLING
    assert again.credentials["config:cfg:0"] is first.credentials["config:cfg:0"]
    rekeyed = Rows(
        ROWS.providers,
        [credential("crd_1", "prv_1", "openai", "sk-openai-bbbbbbbbbb", 2)],
        ROWS.models,
        ROWS.aliases,
    )
    third = build(rekeyed, CONFIG, KEY, previous=again)
    assert cred.key == "sk-openai-bbbbbbbbbb" and cred.weight == 2 and cred.state == "active"
    assert "crd_1" in third.credentials


def test_a_wrong_or_missing_key_refuses_a_strict_load_and_is_survived_on_reload() -> None:
    with pytest.raises(SealError, match="wrong key"):
        build(ROWS, CONFIG, MasterKey(bytes([1]) * 32))
    with pytest.raises(SealError, match="no master key"):
        build(ROWS, CONFIG, None)
    held = build(ROWS, CONFIG, KEY)
    # A running server whose rows were re-sealed under a key it does not hold keeps its keys.
    later = build(ROWS, CONFIG, MasterKey(bytes([1]) * 32), previous=held, strict=False)
    assert later.credentials["crd_1"].key == "sk-openai-aaaaaaaaaa"


def test_alias_validation_names_the_field() -> None:
    offers = {"openai": frozenset({"gpt-4o-mini"}), "groq": frozenset()}
    ok = validate.aliases({"a": ["openai/gpt-4o-mini"], "b": "a"}, providers=offers)
    assert ok == {"a": ["openai/gpt-4o-mini"], "b": ["a"]}
    cases = {
        "aliases.x": {"x": ["y"], "y": ["x"]},  # a cycle
        "aliases.s": {"s": ["s"]},  # itself
        "aliases.u[0]": {"u": ["openai/gpt-9"]},  # not in the catalogue
        "aliases.v[1]": {"v": ["groq/x", "nope/x"]},  # no such provider
        "aliases.w": {"w": []},
        "aliases.bad/name": {"bad/name": ["groq/x"]},
    }
    for param, doc in cases.items():
        with pytest.raises(BadRequest) as err:
            validate.aliases(doc, providers=offers)
        assert err.value.param == param, (param, err.value.message)
        assert (
            "Fix" in err.value.message
            or "must" in err.value.message
            or "alias" in err.value.message
        )
