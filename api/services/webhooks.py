"""Webhook endpoints and their deliveries: rows, checks and shapes, for the API (async) and the admin CLI (sync)."""

from collections.abc import Sequence
from typing import Any

import anyio
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import APIError, not_found
from shared.ids import new_id, now
from shared.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from shared.webhooks import addresses, events, signing

RESOLVE_SECONDS = 10.0


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive this server's webhooks (None if it can). Blocking: resolves the host."""
    return addresses.check_url(url, addresses.Policy.from_settings())


def refuse_url(url: str, problem: str) -> APIError:
    return APIError(400, f"Invalid 'url': {problem}.", param="url", code="invalid_url")


async def check_url(url: str) -> None:
    try:
        with anyio.fail_after(RESOLVE_SECONDS):
            problem = await anyio.to_thread.run_sync(url_problem, url, abandon_on_cancel=True)
    except TimeoutError:
        problem = f"its host could not be resolved within {RESOLVE_SECONDS:.0f} s"
    if problem is not None:
        raise refuse_url(url, problem)


def new_endpoint(*, project_id: str, url: str, event_types: Sequence[str] | None, description: str | None,
                 metadata: dict[str, str] | None) -> WebhookEndpoint:
    return WebhookEndpoint(id=new_id("webhook"), project_id=project_id, created_at=now(), url=url,
                           events=_stored_events(event_types), description=description, meta=metadata,
                           secret=signing.new_secret())


def _stored_events(event_types: Sequence[str] | None) -> list[str] | None:
    return None if event_types is None else list(dict.fromkeys(event_types))


def set_events(e: WebhookEndpoint, event_types: Sequence[str] | None) -> None:
    e.events = _stored_events(event_types)


def set_status(e: WebhookEndpoint, status: str) -> None:
    """Enabling again forgets the failures that disabled it: the endpoint starts with a clean slate."""
    if status == "enabled" and e.status != "enabled":
        e.disabled_reason, e.failing_since = None, None
    elif status == "disabled" and e.status != "disabled":
        e.disabled_reason = "Disabled by request."
    e.status = status


async def get(session: AsyncSession, *, project_id: str, webhook_id: str) -> WebhookEndpoint:
    row = await session.get(WebhookEndpoint, webhook_id)
    if row is None or row.project_id != project_id:
        raise not_found("webhook", webhook_id)
    return row


def render(e: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.id, "object": "webhook", "url": e.url,
        # Subscribed to every type (events omitted): the types there are now, and new ones as they come.
        "events": list(e.events) if e.events is not None else list(events.ALL),
        "description": e.description, "metadata": e.meta or {}, "status": e.status,
        "disabled_reason": e.disabled_reason, "created_at": e.created_at}
    if with_secret:  # shown once, when the endpoint is created
        out["secret"] = e.secret
    return out


def render_delivery(d: WebhookDelivery, event_type: str) -> dict[str, Any]:
    return {"id": d.id, "object": "webhook.delivery", "webhook_id": d.endpoint_id, "event_id": d.event_id,
            "event_type": event_type, "status": d.status, "attempts": d.attempts, "created_at": d.created_at,
            "last_attempt_at": d.last_attempt_at, "last_response_status": d.last_response_status,
            "last_error": d.last_error, "delivered_at": d.delivered_at,
            "next_attempt_at": int(d.next_attempt_at) if d.status == "pending" else None}


def deliveries_query(webhook_id: str, status: str | None) -> Any:
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == webhook_id)
    return stmt.where(WebhookDelivery.status == status) if status else stmt


async def event_types(session: AsyncSession, event_ids: Sequence[str]) -> dict[str, str]:
    if not event_ids:
        return {}
    rows = await session.exec(select(WebhookEvent.id, WebhookEvent.type)
                              .where(WebhookEvent.id.in_(list(event_ids))))  # type: ignore[attr-defined]
    return dict(rows.all())
