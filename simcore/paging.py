"""The filtered, paged list query every list service shares (keyset paging).

A page is the rows matching equality filters (a filter whose value is None is not applied),
after the last key of the previous page, in key order, at most `limit` of them. Keyset paging
(`key > after`) stays stable under inserts and reads an index range instead of skipping rows as
OFFSET does; the API's cursors (api.pagination) carry the last key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import Select

S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def keyset_page(stmt: S, key: Any, *, after: Any = None, limit: int,
                filters: Mapping[Any, Any] | None = None) -> S:
    """`stmt` narrowed to one page: `column == value` for each filter whose value is not None,
    `key > after` unless `after` is None, ordered by `key`, at most `limit` rows."""
    for column, value in (filters or {}).items():
        if value is not None:
            stmt = stmt.where(column == value)
    if after is not None:
        stmt = stmt.where(key > after)
    return stmt.order_by(key).limit(limit)
