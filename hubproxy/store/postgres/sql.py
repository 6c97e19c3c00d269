"""Statements are written once, in the syntax both backends share, with SQLite's `?`
placeholders; `to_postgres` numbers them ($1, $2, ...) for PostgreSQL. What the dialects spell
differently (SQLite's json_set, INSERT OR IGNORE) has to be kept per dialect by its module."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """`?` → `$n`, in order, leaving quoted text ('…', "…") and comments alone."""
    out: list[str] = []
    n = 0
    i = 0
    while i < len(sql):
        ch = sql[i]
        if ch in ("'", '"'):
            end = sql.find(ch, i + 1)
            while end != -1 and sql[end + 1 : end + 2] == ch:  # a doubled quote inside
                end = sql.find(ch, end + 2)
            end = len(sql) if end == -1 else end + 1
            out.append(sql[i:end])
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end == -1 else end
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)
