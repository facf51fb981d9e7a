"""Database engines: async for the API (one event loop serves many requests), sync for Celery workers."""

from collections.abc import AsyncIterator
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.config import get_settings


# No pool_pre_ping: it costs a round trip on every checkout, i.e. on every request and every run step. A
# connection broken by a Postgres restart fails one statement instead, and SQLAlchemy then invalidates the
# whole pool; pool_recycle retires connections before any idle timeout in between (e.g. a proxy's) bites.
@lru_cache
def async_engine() -> AsyncEngine:
    return create_async_engine(get_settings().database_url, pool_size=10, max_overflow=20, pool_recycle=1800)


@lru_cache
def sync_engine() -> Engine:
    return create_engine(get_settings().database_url, pool_size=5, max_overflow=5, pool_recycle=1800)


@lru_cache
def _session_factory() -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(async_engine(), class_=AsyncSession, expire_on_commit=False)


async def session_scope() -> AsyncIterator[AsyncSession]:
    """One session per request; rolled back if the handler did not commit."""
    async with _session_factory()() as session:
        yield session
