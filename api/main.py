"""The HTTP API: validates, stores, and (from the run-engine issue on) enqueues. It never calls a model."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api import errors, observability
from api.routes import assistants, files, models, runs, threads, vector_store_search, vector_stores, webhooks
from shared import backends, logs
from shared.config import get_settings
from shared.db import async_engine

log = logging.getLogger("api")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    if get_settings().migrate_on_start:
        from shared.migrate import upgrade

        await anyio.to_thread.run_sync(upgrade)
    yield
    await async_engine().dispose()


def create_app() -> FastAPI:
    settings = get_settings()
    logs.configure(settings.log_format, settings.log_level)
    backends.routes()  # a mistake in LLM_BACKENDS stops the API at start, not a run later
    app = FastAPI(title="Self-hosted Assistants API", lifespan=lifespan, docs_url=None, redoc_url=None,
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})
    errors.install(app)
    v1 = APIRouter(prefix=observability.API_PREFIX)
    # runs before threads: POST /threads/runs must not be taken for POST /threads/{thread_id}.
    for module in (assistants, runs, threads, files, vector_stores, vector_store_search, webhooks, models):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(observability.router)
    if settings.playground_enabled:
        from api.playground.router import router as playground

        app.include_router(playground)
    app.add_middleware(observability.ObservabilityMiddleware)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Readiness: Postgres and Redis answer."""
        from redis.asyncio import Redis

        checks: dict[str, str] = {}
        try:
            async with async_engine().connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["postgres"] = "ok"
        except Exception as exc:
            checks["postgres"] = f"error: {exc.__class__.__name__}"
        try:
            client = Redis.from_url(get_settings().redis_url, socket_timeout=2)
            await client.ping()
            await client.close()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {exc.__class__.__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)

    return app


app = create_app()
