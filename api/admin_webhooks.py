"""The admin CLI's webhook commands (`python -m api.admin …`): the same endpoints as /v1/webhooks, for operators.

    create-webhook --project NAME --url URL [--events T1,T2] [--description TEXT]   # prints the secret (shown once)
    list-webhooks [--project NAME]
    update-webhook WEBHOOK_ID [--url URL] [--events T1,T2|all] [--enable | --disable]
    delete-webhook WEBHOOK_ID
    list-deliveries WEBHOOK_ID [--limit N]
"""

import argparse
import json
import sys
from typing import Any

from sqlmodel import Session, col, select

from api.services import webhooks as svc
from shared.models import Project, WebhookDelivery, WebhookEndpoint, WebhookEvent
from shared.webhooks import events

COMMANDS = ("create-webhook", "list-webhooks", "update-webhook", "delete-webhook", "list-deliveries")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("create-webhook", help="add a webhook endpoint to a project; prints its signing secret")
    p.add_argument("--project", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--events", help="comma-separated event types (default: all)")
    p.add_argument("--description")
    p = sub.add_parser("list-webhooks")
    p.add_argument("--project")
    p = sub.add_parser("update-webhook")
    p.add_argument("webhook_id")
    p.add_argument("--url")
    p.add_argument("--events", help="comma-separated event types, or 'all'")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--enable", action="store_true")
    state.add_argument("--disable", action="store_true")
    p = sub.add_parser("delete-webhook")
    p.add_argument("webhook_id")
    p = sub.add_parser("list-deliveries", help="a webhook's latest deliveries, newest first (JSON lines)")
    p.add_argument("webhook_id")
    p.add_argument("--limit", type=int, default=20)


class Refused(Exception):
    pass


def _events(value: str | None) -> list[str] | None:
    if value is None or value == "all":
        return None
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in events.ALL]
    if unknown or not chosen:
        raise Refused(f"unknown event type(s) {unknown}; known: {', '.join(events.ALL)}")
    return chosen


def _url(url: str) -> str:
    problem = svc.url_problem(url)
    if problem is not None:
        raise Refused(f"the url cannot receive webhooks: {problem}")
    return url


def _endpoint(session: Session, webhook_id: str) -> WebhookEndpoint:
    e = session.get(WebhookEndpoint, webhook_id)
    if e is None:
        raise Refused(f"no webhook {webhook_id}")
    return e


def run(args: argparse.Namespace, session: Session, project_of: Any) -> int:
    try:
        return _run(args, session, project_of)
    except Refused as e:
        print(str(e), file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, session: Session, project_of: Any) -> int:
    if args.cmd == "create-webhook":
        project = project_of(session, args.project)
        e = svc.new_endpoint(project_id=project.id, url=_url(args.url), event_types=_events(args.events),
                             description=args.description, metadata=None)
        session.add(e)
        session.commit()
        print(f"created webhook {e.id} for project '{args.project}'", file=sys.stderr)
        print(e.secret)
    elif args.cmd == "list-webhooks":
        stmt = select(WebhookEndpoint, Project).where(WebhookEndpoint.project_id == Project.id)
        if args.project:
            stmt = stmt.where(Project.name == args.project)
        for e, project in session.exec(stmt.order_by(col(WebhookEndpoint.seq))).all():
            print(f"{e.id}\t{project.name}\t{e.status}\t{e.url}\t{','.join(svc.render(e)['events'])}"
                  + (f"\t{e.disabled_reason}" if e.disabled_reason else ""))
    elif args.cmd == "update-webhook":
        e = _endpoint(session, args.webhook_id)
        if args.url:
            e.url = _url(args.url)
        if args.events:
            svc.set_events(e, _events(args.events))
        if args.enable or args.disable:
            svc.set_status(e, "enabled" if args.enable else "disabled")
        session.add(e)
        session.commit()
        print(json.dumps(svc.render(e)))
    elif args.cmd == "delete-webhook":
        session.delete(_endpoint(session, args.webhook_id))
        session.commit()
    else:
        _endpoint(session, args.webhook_id)
        rows = session.exec(select(WebhookDelivery, WebhookEvent.type)
                            .where(WebhookDelivery.endpoint_id == args.webhook_id,
                                   WebhookEvent.id == WebhookDelivery.event_id)
                            .order_by(col(WebhookDelivery.seq).desc()).limit(args.limit)).all()
        for d, event_type in rows:
            print(json.dumps(svc.render_delivery(d, event_type)))
    return 0
