"""Hub keys: accepted forms, refusals in OpenAI's shape, and revocation on a live server."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import openai
import pytest

from hubproxy.gateway import auth
from tests.conftest import Hub, add_key

BACKENDS = ("sqlite", "postgres")  # the hub tests here run on both (tests/conftest.py)

MESSAGES = [{"role": "user", "content": "hi"}]


async def status_for(hub: Hub, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as s, s.get(hub.url + "/v1/models", headers=headers) as r:
        return r.status, await r.json()


async def test_bearer_and_x_api_key_are_accepted(hub: Hub) -> None:
    assert (await status_for(hub, {"Authorization": f"Bearer {hub.key}"}))[0] == 200
    assert (await status_for(hub, {"x-api-key": hub.key}))[0] == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer hp-not-a-real-key"}, "invalid_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_api_key"),
        ({"x-api-key": "nope"}, "invalid_api_key"),
    ],
)
async def test_bad_keys_get_401_in_openai_shape(
    hub: Hub, headers: dict[str, str], code: str
) -> None:
    status, body = await status_for(hub, headers)
    assert status == 401
    assert body["error"]["code"] == code  # type: ignore[index]
    assert set(body["error"]) == {"message", "type", "param", "code"}  # type: ignore[arg-type]


async def test_sdk_sees_authentication_error(hub: Hub) -> None:
    with pytest.raises(openai.AuthenticationError):
        await hub.openai(api_key="hp-wrong").chat.completions.create(
            model="demo/echo", messages=MESSAGES
        )
    assert hub.calls() == []


async def test_key_created_elsewhere_works_at_once(hub: Hub) -> None:
    fresh = add_key(hub.settings, "bob")  # another process's write, as the CLI does
    reply = await hub.openai(api_key=fresh).chat.completions.create(
        model="demo/echo", messages=MESSAGES
    )
    assert reply.choices[0].message.content == "You said: hi"


async def test_cli_revocation_reaches_live_server_within_2s(hub: Hub) -> None:
    client = hub.openai()
    await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
    [row] = hub.rows("SELECT id FROM api_keys WHERE key_hash = ?", auth.hash_key(hub.key))
    config = hub.settings.source
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hubproxy", "keys", "revoke", str(row["id"]),
         "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    revoked_at = asyncio.get_running_loop().time()
    for _ in range(100):  # bounded: 100 x 50 ms
        try:
            await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
        except openai.AuthenticationError:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the revoked key still works")
    assert asyncio.get_running_loop().time() - revoked_at < 2.0


def test_keys_are_stored_hashed_with_a_prefix(hub: Hub) -> None:
    [row] = hub.rows("SELECT prefix, key_hash FROM api_keys")
    assert row["key_hash"] == auth.hash_key(hub.key) and len(row["key_hash"]) == 64
    assert row["prefix"] == hub.key[:10]
    conn = hub.db()
    try:
        if hub.settings.database.url is None:
            dump = "\n".join(conn.iterdump())
        else:  # every table's rows, as text
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
            dump = "\n".join(
                str(tuple(row)) for (t,) in tables for row in conn.execute(f"SELECT * FROM {t}")
            )
    finally:
        conn.close()
    assert hub.key not in dump and row["key_hash"] in dump
