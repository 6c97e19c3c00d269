"""Sealing provider keys: AES-256-GCM bound to the row, the master key's id, refusals."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hubproxy.catalog import sealing
from hubproxy.catalog.sealing import MasterKey, SealError
from hubproxy.config import ConfigError, Secret, SecretsSettings

KEY = MasterKey(bytes(range(32)))
OTHER = MasterKey(bytes(range(1, 33)))


def test_round_trip_with_a_fresh_nonce_per_write() -> None:
    a = KEY.seal("sk-live-123456789", credential_id="crd_1", provider_id="prv_1")
    b = KEY.seal("sk-live-123456789", credential_id="crd_1", provider_id="prv_1")
    assert len(a.nonce) == 12 and a.nonce != b.nonce and a.ciphertext != b.ciphertext
    assert b"sk-live" not in a.ciphertext and a.key_id == KEY.id and len(KEY.id) == 8
    assert KEY.open(a, credential_id="crd_1", provider_id="prv_1") == "sk-live-123456789"


def test_swapped_ciphertexts_open_neither_row() -> None:
    one = KEY.seal("sk-one-aaaaaaaaaaaa", credential_id="crd_1", provider_id="prv_1")
    two = KEY.seal("sk-two-bbbbbbbbbbbb", credential_id="crd_2", provider_id="prv_1")
    with pytest.raises(SealError, match="altered or moved"):
        KEY.open(two, credential_id="crd_1", provider_id="prv_1")
    with pytest.raises(SealError, match="altered or moved"):
        KEY.open(one, credential_id="crd_2", provider_id="prv_1")
    with pytest.raises(SealError, match="altered or moved"):  # same id, other provider
        KEY.open(one, credential_id="crd_1", provider_id="prv_2")


def test_the_wrong_key_is_named_as_such() -> None:
    sealed = KEY.seal("sk-one-aaaaaaaaaaaa", credential_id="crd_1", provider_id="prv_1")
    with pytest.raises(SealError, match=f"sealed under master key {KEY.id}.*the wrong key"):
        OTHER.open(sealed, credential_id="crd_1", provider_id="prv_1")
    with pytest.raises(SealError, match="no master key is given"):
        sealing.require(None, 3)


def test_keys_parse_from_hex_base64_env_or_file(tmp_path: Path) -> None:
    raw = bytes(range(32))
    assert sealing.parse_key(raw.hex(), "x").id == KEY.id
    assert sealing.parse_key(base64.b64encode(raw).decode(), "x").id == KEY.id
    assert sealing.parse_key(base64.urlsafe_b64encode(raw).decode() + "\n", "x").id == KEY.id
    assert len(base64.b64decode(sealing.new_key())) == 32
    for bad in ("", "abc", raw.hex()[:-2], base64.b64encode(raw[:31]).decode()):
        with pytest.raises(ConfigError, match="gen-key"):
            sealing.parse_key(bad, "x")
    path = tmp_path / "master.key"
    path.write_text(raw.hex())
    assert sealing.master_key(SecretsSettings(key_file=path)) is not None
    env_wins = SecretsSettings(key=Secret(OTHER_HEX), key_file=path)
    assert sealing.master_key(env_wins).id == OTHER.id  # type: ignore[union-attr]
    assert sealing.master_key(SecretsSettings()) is None
    with pytest.raises(ConfigError, match="cannot read"):
        sealing.master_key(SecretsSettings(key_file=tmp_path / "missing"))
    assert "00" not in repr(KEY) and KEY.id in repr(KEY)


OTHER_HEX = bytes(range(1, 33)).hex()


def test_mask_shows_first_three_and_last_four() -> None:
    assert sealing.mask("sk-proj-0123456789abcd") == "sk-…abcd"
    assert sealing.mask("short-key") == "…"
