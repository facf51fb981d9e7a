"""Database engines: async for the API (one event loop serves many requests), sync for Celery workers."""

import logging
from collections.abc import AsyncIterator
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.config import get_settings

log = logging.getLogger("shared.db")

# No pool_pre_ping: it costs a round trip on every checkout, i.e. on every request and every run step. A
# connection broken by a Postgres restart fails one statement instead, and SQLAlchemy then invalidates the
# whole pool; pool_recycle retires connections before any idle timeout in between (e.g. a proxy's) bites.
@lru_cache
def async_engine() -> AsyncEngine:
    s = get_settings()
    return create_async_engine(s.database_url, pool_size=s.db_pool_size, max_overflow=s.db_max_overflow,
                               pool_timeout=s.db_pool_timeout_seconds, pool_recycle=1800,
                               connect_args={"application_name": s.db_application_name})


@lru_cache
def sync_engine() -> Engine:
    s = get_settings()
    return create_engine(s.database_url, pool_size=s.db_pool_size, max_overflow=s.db_max_overflow,
                         pool_timeout=s.db_pool_timeout_seconds, pool_recycle=1800,
                         connect_args={"application_name": s.db_application_name})


@lru_cache
def _session_factory() -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(async_engine(), class_=AsyncSession, expire_on_commit=False)


async def session_scope() -> AsyncIterator[AsyncSession]:
    """One session per request; rolled back if the handler did not commit."""
    session = _session_factory()()
    try:
        yield session
    finally:
        await _close(session)


async def _close(session: AsyncSession) -> None:
    """Close a request's session, which rolls back whatever it did not commit, shielded from cancellation as
    `async with` would (a client gone must not leave the connection checked out). FastAPI runs this after the
    response went out, so a failure cannot become an error answer. A ROLLBACK on a connection that died meanwhile
    (Postgres restarted) loses nothing: the server dropped the transaction with the connection, which SQLAlchemy
    has invalidated and the pool has let go. Any other failure is a real one, and raised."""
    try:
        await session.__aexit__(None, None, None)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("closing a request's session found its connection gone; its uncommitted work went with it (%s)",
                    str(exc.orig or exc).splitlines()[0][:200])
