"""Model instances <-> table rows, for hot paths that use SQLAlchemy Core instead of ORM sessions (the ORM's
bookkeeping costs more than the statements there). Column knowledge stays in shared/models.py."""

from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Table, insert, inspect
from sqlmodel import SQLModel

from shared.driver_sql import Prepared, prepare

M = TypeVar("M", bound=SQLModel)


@lru_cache
def columns(model: type[SQLModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, column) pairs: they differ where a column is named like a reserved attribute (metadata)."""
    return tuple((attr.key, attr.columns[0].name) for attr in inspect(model).column_attrs)


def table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def from_row(model: type[M], row: Any) -> M:
    return from_mapping(model, row._mapping)


def from_values(model: type[M], names: list[str], values: Any) -> M:
    """A row read on the driver (shared/driver_sql.py): column names and the tuple of values."""
    return from_mapping(model, dict(zip(names, values, strict=True)))


def from_mapping(model: type[M], data: Any) -> M:
    return model(**{attr: data[col] for attr, col in columns(model) if col in data})


def to_row(obj: SQLModel, *, skip: tuple[str, ...] = ("seq",)) -> dict[str, Any]:
    return {col: getattr(obj, attr) for attr, col in columns(type(obj)) if attr not in skip}


def column_values(model: type[SQLModel], values: dict[str, Any]) -> dict[str, Any]:
    names = dict(columns(model))
    return {names[k]: v for k, v in values.items()}


@lru_cache
def prepared_insert(model: type[SQLModel], columns: tuple[str, ...]) -> Prepared:
    """INSERT of a row of `model` giving `columns` (as `to_row` names them), compiled for the driver."""
    return prepare(insert(table(model)), column_keys=columns)
