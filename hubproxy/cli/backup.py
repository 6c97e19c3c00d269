"""`hubproxy backup PATH` (while serving) and `hubproxy restore PATH` (server stopped)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hubproxy.cli.common import UsageError, settings_of, sqlite_only
from hubproxy.store import backup as store


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "backup", parents=[common],
        help="copy the database to PATH, consistently, even while the server runs",
    )  # fmt: skip
    p.add_argument("path", type=Path)
    p.set_defaults(run=backup)
    p = sub.add_parser(
        "restore", parents=[common],
        help="replace the database with the backup at PATH (stop the server first)",
    )  # fmt: skip
    p.add_argument("path", type=Path)
    p.set_defaults(run=restore)


def backup(args: argparse.Namespace) -> int:
    sqlite_only(args, "backup")
    settings = settings_of(args).database
    if not settings.path.exists():
        raise UsageError(f"{settings.path}: no database to back up")
    size = store.backup(settings, args.path)
    print(f"backed up {settings.path} to {args.path} ({size} bytes, integrity ok)")
    return 0


def restore(args: argparse.Namespace) -> int:
    sqlite_only(args, "restore")
    settings = settings_of(args).database
    try:
        store.restore(settings, args.path)
    except store.Locked as exc:
        raise UsageError(f"{exc}; stop it first (systemctl stop hubproxy)") from None
    except (FileNotFoundError, store.Corrupt) as exc:
        raise UsageError(f"cannot restore from {args.path}: {exc}") from None
    print(f"restored {settings.path} from {args.path}")
    return 0
