"""API keys: `sk-…` secrets shown once, stored as sha256, each mapped to one project."""

import hashlib
import secrets
import time
from typing import Annotated

from fastapi import Depends, Header
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import APIError
from shared.config import get_settings
from shared.db import session_scope
from shared.ids import new_id, now
from shared.models import ApiKey

_MISSING = ("You didn't provide an API key. You need to provide your API key in an Authorization header using "
            "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")

# key hash -> (project id, time cached). Small and per-process; entries expire after auth_cache_seconds.
_cache: dict[str, tuple[str, float]] = {}


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key(project_id: str, name: str) -> tuple[ApiKey, str]:
    secret = "sk-" + secrets.token_urlsafe(36).replace("-", "A").replace("_", "b")
    row = ApiKey(id=new_id("api_key"), project_id=project_id, name=name, key_hash=hash_key(secret),
                 hint=f"sk-...{secret[-4:]}", created_at=now())
    return row, secret


def _redact(secret: str) -> str:
    return secret if len(secret) <= 8 else f"{secret[:3]}*****{secret[-4:]}"


async def project_id_for(
    session: Annotated[AsyncSession, Depends(session_scope)],
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    if not authorization or not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
        raise APIError(401, _MISSING)
    secret = authorization[7:].strip()
    digest = hash_key(secret)
    hit = _cache.get(digest)
    if hit and time.monotonic() - hit[1] < get_settings().auth_cache_seconds:
        return hit[0]
    row = (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest,
                                                   ApiKey.revoked_at.is_(None)))).first()  # type: ignore[union-attr]
    if row is None:
        _cache.pop(digest, None)
        raise APIError(401, f"Incorrect API key provided: {_redact(secret)}. You can find your API key in the "
                            "project's admin CLI (python -m api.admin).", code="invalid_api_key")
    _cache[digest] = (row.project_id, time.monotonic())
    return row.project_id
