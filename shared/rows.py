"""Model instances <-> table rows, for hot paths that use SQLAlchemy Core instead of ORM sessions (the ORM's
bookkeeping costs more than the statements there). Column knowledge stays in shared/models.py."""

from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Insert, Table, insert, inspect
from sqlmodel import SQLModel

M = TypeVar("M", bound=SQLModel)


@lru_cache
def columns(model: type[SQLModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, column) pairs: they differ where a column is named like a reserved attribute (metadata)."""
    return tuple((attr.key, attr.columns[0].name) for attr in inspect(model).column_attrs)


def table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def from_row(model: type[M], row: Any) -> M:
    data = row._mapping
    return model(**{attr: data[col] for attr, col in columns(model) if col in data})


def to_row(obj: SQLModel, *, skip: tuple[str, ...] = ("seq",)) -> dict[str, Any]:
    return {col: getattr(obj, attr) for attr, col in columns(type(obj)) if attr not in skip}


def column_values(model: type[SQLModel], values: dict[str, Any]) -> dict[str, Any]:
    names = dict(columns(model))
    return {names[k]: v for k, v in values.items()}


@lru_cache
def insert_stmt(model: type[SQLModel]) -> Insert:
    return insert(table(model))
