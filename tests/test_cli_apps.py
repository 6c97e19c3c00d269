"""`hubproxy apps` (register, subscribe, list) and media rates set from the CLI, on a real
database; the rates read back price media exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hubproxy import config
from hubproxy.billing import prices
from hubproxy.store import apps
from hubproxy.store.backend import connect_blocking
from tests.test_cli import Run, run  # noqa: F401  (the fixture)

BACKENDS = ("sqlite", "postgres")  # each test here runs on both (tests/conftest.py)

PK = "0xE4852B7091317E3622068E62A5127D1FB0D4AE2FC50213295E10652D2F0ABFC7"
DID = "zNKtCNqYWLYWYW3gWRA1vnRykfCBZYHZvzKr"


def _db(tmp_path: Path) -> sqlite3.Connection:
    """The database the `run` fixture's config names (SQLite's file, or PostgreSQL)."""
    conn, _ = connect_blocking(config.load(tmp_path / "c.toml").database)
    return conn


def test_apps_register_subscribe_list(run: Run, tmp_path: Path) -> None:  # noqa: F811
    code, out, _ = run("apps", "register", "--public-key", PK)
    assert (code, out.strip()) == (0, f"registered app: {DID}")
    code, out, _ = run("apps", "register", "--public-key", PK.lower())
    assert (code, out.strip()) == (0, f"app already registered: {DID}")
    code, _, err = run("apps", "register", "--public-key", "0x1234")
    assert code == 2 and "publicKey" in err

    code, out, _ = run("apps", "list")
    assert DID in out and "none" in out and out.strip().endswith("no")
    row = apps.app(_db(tmp_path), DID)
    assert row is not None and row["public_key"] == PK.lower()
    assert not apps.is_active(row, 0)

    code, out, _ = run("apps", "subscribe", DID, "--until", "2999-01-01")
    assert code == 0 and "active until 2999-01-01 00:00:00 UTC (active)" in out
    row = apps.app(_db(tmp_path), DID)
    assert row is not None and row["subscription_until"] == 32472144000000
    assert apps.is_active(row, 32472144000000 - 1) and not apps.is_active(row, 32472144000000)
    assert run("apps", "list")[1].strip().endswith("yes")

    code, out, _ = run("apps", "subscribe", DID, "--until", "2000-01-01T00:00:00+02:00")
    assert code == 0 and "(inactive)" in out
    row = apps.app(_db(tmp_path), DID)
    assert row is not None and row["subscription_until"] == 946677600000
    code, out, _ = run("apps", "subscribe", DID, "--until", "2999-01-01", "--status", "canceled")
    row = apps.app(_db(tmp_path), DID)
    assert row is not None and not apps.is_active(row, 0)

    assert run("apps", "subscribe", "zNope", "--until", "2999-01-01")[0] == 2
    assert run("apps", "subscribe", DID, "--until", "next week")[0] == 2


def _rate(tmp_path: Path, model: str, kind: str) -> prices.Rate:
    row = (
        _db(tmp_path)
        .execute("SELECT * FROM model_rates WHERE model = ? AND type = ?", (model, kind))
        .fetchone()
    )
    return prices.Rate.from_row(dict(zip(row.keys(), row, strict=True)))


def test_media_rates_from_the_cli_price_exactly(run: Run, tmp_path: Path) -> None:  # noqa: F811
    code, out, err = run("rates", "set", "openai/dall-e-3", "--per-image", "0.04",
                         "--per-image-variant", "1024x1792/hd=0.12",
                         "--per-image-variant", "1024x1024/hd=0.08")  # fmt: skip
    assert code == 0, err
    assert "(image)" in out
    dalle = _rate(tmp_path, "dall-e-3", "image")
    assert dalle.per_image_variants == (("1024x1024/hd", 80_000), ("1024x1792/hd", 120_000))
    none = prices.Usage()
    hd_tall = prices.MediaUsage(images=3, variant="1024x1792/hd")
    assert prices.cost(dalle, none, media=hd_tall) == 360_000
    std = prices.MediaUsage(images=2, variant="1024x1024/standard")
    assert prices.cost(dalle, none, media=std) == 80_000

    assert run("rates", "set", "openai/tts-1", "--per-1m-chars", "15")[0] == 0
    tts = _rate(tmp_path, "tts-1", "audio")
    assert prices.cost(tts, none, media=prices.MediaUsage(chars=1234)) == 18_510
    assert prices.cost(tts, none, media=prices.MediaUsage(chars=1)) == 15

    assert run("rates", "set", "openai/whisper-1", "--per-second", "0.0001", "--per-mb",
               "0.01")[0] == 0  # fmt: skip
    whisper = _rate(tmp_path, "whisper-1", "audio")
    by_time = prices.MediaUsage(milliseconds=3520, bytes=2_500_000)
    assert prices.cost(whisper, none, media=by_time) == 352
    by_size = prices.MediaUsage(bytes=2_500_001)  # no duration reported: per MB, rounded up
    assert prices.cost(whisper, none, media=by_size) == 25_001

    code, out, _ = run("rates", "list")
    assert "1024x1792/hd" in out and "0.0001" in out
    # refused: a variant not keyed size/quality, a chat rate without token prices
    assert run("rates", "set", "openai/dall-e-3", "--per-image-variant", "hd=0.1")[0] == 2
    assert run("rates", "set", "openai/gpt-4o", "--type", "chat")[0] == 2
