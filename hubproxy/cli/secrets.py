"""`hubproxy secrets`: make a master key, and re-seal every credential under a new one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hubproxy.catalog import sealing
from hubproxy.cli.common import UsageError, database, settings_of
from hubproxy.config import ConfigError
from hubproxy.store import catalog as store
from hubproxy.store.ops import apply


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("secrets", help="the master key that seals provider keys")
    cmds = group.add_subparsers(required=True)
    cmds.add_parser(
        "gen-key", parents=[common], help="print a new master key (base64)"
    ).set_defaults(run=gen_key)
    p = cmds.add_parser(
        "rotate", parents=[common],
        help="re-seal every credential under a new key (from --new-key-file or "
        "$HUBPROXY_NEW_SECRET_KEY), in one transaction",
    )  # fmt: skip
    p.add_argument("--new-key-file", type=Path)
    p.set_defaults(run=rotate)


def gen_key(args: argparse.Namespace) -> int:
    print(sealing.new_key())
    return 0


def rotate(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    old = sealing.master_key(settings.secrets)
    if args.new_key_file is not None:
        try:
            text = args.new_key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--new-key-file {args.new_key_file}: {exc.strerror}") from None
        new = sealing.parse_key(text, f"--new-key-file {args.new_key_file}")
    elif settings.secrets.new_key is not None:
        new = sealing.parse_key(settings.secrets.new_key.reveal(), "$HUBPROXY_NEW_SECRET_KEY")
    else:
        raise UsageError(
            "no new key: pass --new-key-file PATH or set HUBPROXY_NEW_SECRET_KEY "
            "(make one with `hubproxy secrets gen-key`)"
        )
    conn = database(args)
    rows = store.read(conn).credentials
    key = sealing.require(old, len(rows)) if rows else None
    ops = []
    for row in rows:
        sealed = sealing.Sealed(row["nonce"], row["ciphertext"], row["key_id"])
        try:
            assert key is not None
            plain = key.open(sealed, credential_id=row["id"], provider_id=row["provider_id"])
        except ConfigError as exc:
            raise UsageError(f"nothing was changed: {exc}") from None
        again = new.seal(plain, credential_id=row["id"], provider_id=row["provider_id"])
        ops.append(store.reseal_credential(row["id"], sealed=again))
    apply(conn, ops)
    print(
        f"re-sealed {len(ops)} credential(s) under master key {new.id}. Running servers keep "
        "the keys they hold; start them next with the new key."
    )
    return 0
