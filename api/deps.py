"""Per-request dependencies: database session, caller's project, and the API shape (v1 or v2)."""

from typing import Annotated, Literal

from fastapi import Depends, Header
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import project_id_for
from api.errors import APIError
from shared.db import session_scope

Version = Literal["v1", "v2"]

SessionDep = Annotated[AsyncSession, Depends(session_scope)]
ProjectDep = Annotated[str, Depends(project_id_for)]

_NEED_BETA = ("You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by "
              "setting the header 'OpenAI-Beta: assistants=v2'.")


async def api_version(openai_beta: Annotated[str | None, Header()] = None) -> Version:
    """`OpenAI-Beta: assistants=v1|v2` (possibly among other comma-separated flags) picks the shape. (async: a
    plain `def` dependency would be run in FastAPI's thread pool, a thread hand-off on every request.)"""
    for flag in (openai_beta or "").split(","):
        name, _, value = flag.strip().partition("=")
        if name == "assistants":
            if value in ("v1", "v2"):
                return value  # type: ignore[return-value]
            raise APIError(400, f"Invalid value for 'OpenAI-Beta' header: '{flag.strip()}'. Supported values "
                                "are 'assistants=v1' and 'assistants=v2'.", code="invalid_beta")
    raise APIError(400, _NEED_BETA, code="invalid_beta")


VersionDep = Annotated[Version, Depends(api_version)]
