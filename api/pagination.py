"""Cursor pagination: a page is `{"items": [...], "next_cursor": "..."}`; pass `cursor` back to get
the next page. Cursors are opaque (base64url of the last item's key) and stable under inserts."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel

from simcore.errors import InvalidInput

T = TypeVar("T")

LimitQuery = Annotated[int, Query(ge=1, le=1000, description="Page size")]
CursorQuery = Annotated[str | None, Query(max_length=200,
                                          description="next_cursor of the previous page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(last_key: str | int) -> str:
    return base64.urlsafe_b64encode(str(last_key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise InvalidInput("cursor", "not a cursor this API issued") from e


def next_cursor(items_keys: list[str] | list[int], limit: int) -> str | None:
    return encode_cursor(items_keys[-1]) if len(items_keys) == limit and items_keys else None


MAX_ID = 2**62
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A numeric id")]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def int_cursor(cursor: str | None) -> int | None:
    """The numeric key a cursor carries (order, job, delivery or audit ids)."""
    after = decode_cursor(cursor)
    if after is None:
        return None
    if not after.isdigit() or int(after) > MAX_ID:
        raise InvalidInput("cursor", "not a cursor this API issued")
    return int(after)
