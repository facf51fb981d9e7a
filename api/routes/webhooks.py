"""/v1/webhooks: a project's webhook endpoints and their deliveries (an extension: OpenAI managed its webhooks in a
dashboard). The signing secret is shown once, in the answer to the create."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import select

from api.deps import ProjectDep, SessionDep
from api.pagination import PageDep, fetch_page, list_body
from api.schemas.webhooks import DeliveryStatus, WebhookCreate, WebhookUpdate
from api.services import webhooks as svc
from shared.models import WebhookDelivery, WebhookEndpoint

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks")
async def create_webhook(body: WebhookCreate, session: SessionDep, project_id: ProjectDep) -> dict[str, Any]:
    await svc.check_url(body.url)
    e = svc.new_endpoint(project_id=project_id, url=body.url, event_types=body.events,
                         description=body.description, metadata=body.metadata)
    session.add(e)
    await session.commit()
    return svc.render(e, with_secret=True)


@router.get("/webhooks")
async def list_webhooks(session: SessionDep, project_id: ProjectDep, page: PageDep) -> dict[str, Any]:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id)
    rows, has_more = await fetch_page(session, stmt, seq_col=WebhookEndpoint.seq, id_col=WebhookEndpoint.id,
                                      page=page)
    return list_body([svc.render(e) for e in rows], has_more)


@router.get("/webhooks/{webhook_id}")
async def retrieve_webhook(webhook_id: str, session: SessionDep, project_id: ProjectDep) -> dict[str, Any]:
    return svc.render(await svc.get(session, project_id=project_id, webhook_id=webhook_id))


@router.post("/webhooks/{webhook_id}")
async def modify_webhook(webhook_id: str, body: WebhookUpdate, session: SessionDep,
                         project_id: ProjectDep) -> dict[str, Any]:
    e = await svc.get(session, project_id=project_id, webhook_id=webhook_id)
    given = body.model_fields_set
    if "url" in given and body.url is not None and body.url != e.url:
        await svc.check_url(body.url)
        e.url = body.url
    if "events" in given:
        svc.set_events(e, body.events)
    if "description" in given:
        e.description = body.description
    if "metadata" in given:
        e.meta = body.metadata
    if "status" in given and body.status is not None:
        svc.set_status(e, body.status)
    session.add(e)
    await session.commit()
    return svc.render(e)


@router.delete("/webhooks/{webhook_id}")
async def delete_webhook(webhook_id: str, session: SessionDep, project_id: ProjectDep) -> dict[str, Any]:
    e = await svc.get(session, project_id=project_id, webhook_id=webhook_id)
    await session.delete(e)  # its deliveries go with it (ON DELETE CASCADE)
    await session.commit()
    return {"id": webhook_id, "object": "webhook.deleted", "deleted": True}


@router.get("/webhooks/{webhook_id}/deliveries")
async def list_deliveries(webhook_id: str, session: SessionDep, project_id: ProjectDep, page: PageDep,
                          status: Annotated[DeliveryStatus | None, Query()] = None) -> dict[str, Any]:
    """Newest first by default: each delivery's attempts, last answer and what happens next."""
    await svc.get(session, project_id=project_id, webhook_id=webhook_id)
    rows, has_more = await fetch_page(session, svc.deliveries_query(webhook_id, status), seq_col=WebhookDelivery.seq,
                                      id_col=WebhookDelivery.id, page=page)
    types = await svc.event_types(session, [d.event_id for d in rows])
    return list_body([svc.render_delivery(d, types.get(d.event_id, "")) for d in rows], has_more)
