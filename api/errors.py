"""OpenAI's error envelope `{"error": {"message", "type", "param", "code"}}` for every failure, including
the ones FastAPI and Starlette would otherwise answer in their own shapes (422 bodies, plain 404s)."""

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("api.errors")
RETRY_AFTER_SECONDS = 2


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def not_found(kind: str, object_id: str) -> APIError:
    """404 worded as OpenAI words it: "No assistant found with id 'asst_x'." """
    return APIError(404, f"No {kind} found with id '{object_id}'.")


def file_not_found(file_id: str) -> APIError:
    return APIError(404, f"No such File object: {file_id}", param="id")


def error_response(err: APIError) -> JSONResponse:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def install(app: FastAPI) -> None:
    from api.validation import request_validation_error

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request_validation_error(exc.errors(), request.headers.get("content-type")))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(APIError(404, f"Invalid URL ({request.method} {request.url.path})"))
        if exc.status_code == 405:
            return error_response(APIError(405, f"Invalid method for URL ({request.method} {request.url.path})"))
        return error_response(APIError(exc.status_code, str(exc.detail)))

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
            return await _unavailable(request, exc)
        # Values Postgres cannot store (NUL characters in text, out-of-range numbers) are the client's to fix.
        if isinstance(exc.orig, psycopg.DataError):
            detail = "strings may not contain NUL (\\u0000) characters" if "NUL" in str(exc.orig) else \
                "a value is out of range or malformed"
            return error_response(APIError(400, f"Invalid request: {detail}.", code="invalid_value"))
        return await _unexpected(request, exc)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(RedisError)
    @app.exception_handler(KombuOperationalError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        """Postgres or Redis is away (restarting, failing over, overloaded): nothing was lost, and the request may
        be retried — which the SDKs do on a 503, after Retry-After."""
        log.warning("%s %s: a dependency is unavailable (%s: %s)", request.method, request.url.path,
                    exc.__class__.__name__, str(exc)[:200])
        return error_response(APIError(503, "The service is temporarily unavailable; please retry shortly.",
                                       type="server_error", code="service_unavailable",
                                       retry_after=RETRY_AFTER_SECONDS))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(APIError(500, "The server had an error while processing your request.",
                                       type="server_error"))
