"""Cursor pagination as OpenAI does it: `limit`, `order`, `after`, `before` over an id, returning
`{object: "list", data, first_id, last_id, has_more}`.

Rows are ordered by `seq`, a unique database identity, never by `created_at` alone: many rows created in one
second would otherwise page out of order or repeat.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Query
from sqlalchemy import ColumnElement
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from api.errors import APIError

T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    limit: int
    order: Literal["asc", "desc"]
    after: str | None
    before: str | None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    before: str | None = None,
) -> Page:
    return Page(limit, order, after or None, before or None)


PageDep = Annotated[Page, Depends(page_params)]


def _bad_cursor(param: str, value: str) -> APIError:
    return APIError(400, f"Invalid '{param}': no object with id '{value}' in this list.", param=param,
                    code="invalid_value")


async def fetch_page(session: AsyncSession, stmt: SelectOfScalar[T], *, seq_col: Any, id_col: Any,
                     page: Page) -> tuple[list[T], bool]:
    """Run `stmt` (already scoped to the caller's rows) one page at a time. Returns (rows, has_more)."""
    desc = page.order == "desc"
    for param, cursor in (("after", page.after), ("before", page.before)):
        if cursor is None:
            continue
        cursor_seq = await session.scalar(stmt.with_only_columns(seq_col).where(id_col == cursor))
        if cursor_seq is None:
            raise _bad_cursor(param, cursor)
        # "after" moves along the list order, "before" against it.
        greater = (param == "after") == (not desc)
        cond: ColumnElement[bool] = seq_col > cursor_seq if greater else seq_col < cursor_seq
        stmt = stmt.where(cond)
    # With only `before`, walk backwards from the cursor so the page ends right next to it, then flip.
    backwards = page.before is not None and page.after is None
    ascending = (not desc) != backwards
    stmt = stmt.order_by(seq_col.asc() if ascending else seq_col.desc()).limit(page.limit + 1)
    rows = list((await session.exec(stmt)).all())
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if backwards:
        rows.reverse()
    return rows, has_more


def page_list(items: Sequence[T], page: Page, key: Callable[[T], str]) -> tuple[list[T], bool]:
    """The same semantics over a short in-memory list already in ascending order (e.g. a message's files)."""
    ordered = list(items) if page.order == "asc" else list(reversed(items))
    ids = [key(i) for i in ordered]
    start, end = 0, len(ordered)
    if page.after is not None:
        if page.after not in ids:
            raise _bad_cursor("after", page.after)
        start = ids.index(page.after) + 1
    if page.before is not None:
        if page.before not in ids:
            raise _bad_cursor("before", page.before)
        end = ids.index(page.before)
    window = ordered[start:end]
    if page.before is not None and page.after is None:
        return window[-page.limit:], len(window) > page.limit
    return window[: page.limit], len(window) > page.limit


def list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": has_more}


__all__ = ["Page", "PageDep", "fetch_page", "list_body", "page_list", "select"]
