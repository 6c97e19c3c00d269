"""The reader's interface, which both backends implement: the small part of an
aiosqlite.Connection the store's read functions use.

`execute(sql, params)` (SQLite's `?` placeholders) gives a result to await or to enter with
`async with`; its cursor has `fetchall()`, `fetchone()` and async iteration; a row is indexed
by position or column name and has `keys()`. `BEGIN` and `COMMIT` bracket reads that must
agree. aiosqlite's Connection is the SQLite reader as it is; store/postgres/reader.py is the
PostgreSQL one. Statements are written once where the dialects agree; where they do not, the
module that owns the statement keeps one per dialect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterable
from types import TracebackType
from typing import Any, Protocol, TypeVar

_T_co = TypeVar("_T_co", covariant=True)


class Cursor(Protocol):
    async def fetchall(self) -> Iterable[Any]: ...

    async def fetchone(self) -> Any: ...

    def __aiter__(self) -> AsyncIterator[Any]: ...


class Execution(Protocol[_T_co]):
    """What execute() returns: awaitable, and an async context manager."""

    def __await__(self) -> Generator[Any, None, _T_co]: ...

    async def __aenter__(self) -> _T_co: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any: ...


class Reader(Protocol):
    """The server's read connection (admin views, cache reloads); never on the request path."""

    def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Execution[Cursor]: ...

    async def close(self) -> None: ...
