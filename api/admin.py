"""Operator CLI: projects, API keys and webhook endpoints.

    python -m api.admin create-key --project NAME [--name LABEL]   # prints the new sk-… key (shown once)
    python -m api.admin list-keys [--project NAME]
    python -m api.admin revoke-key KEY_ID
    python -m api.admin create-webhook|list-webhooks|update-webhook|delete-webhook|list-deliveries …
                                                                  # see api/admin_webhooks.py
"""

import argparse
import sys

from sqlmodel import Session, select

from api import admin_webhooks
from api.auth import generate_key
from shared.db import sync_engine
from shared.ids import new_id, now
from shared.migrate import upgrade
from shared.models import ApiKey, Project


def _project(session: Session, name: str) -> Project:
    project = session.exec(select(Project).where(Project.name == name)).first()
    if project is None:
        project = Project(id=new_id("project"), name=name, created_at=now())
        session.add(project)
        session.flush()
    return project


def create_key(project_name: str, label: str) -> tuple[ApiKey, str]:
    with Session(sync_engine()) as session:
        project = _project(session, project_name)
        row, secret = generate_key(project.id, label)
        session.add(row)
        session.commit()
        session.refresh(row)
        return row, secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.admin")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("create-key", help="create a project if needed and a new API key for it")
    p.add_argument("--project", required=True)
    p.add_argument("--name", default="default")
    p = sub.add_parser("list-keys")
    p.add_argument("--project")
    p = sub.add_parser("revoke-key")
    p.add_argument("key_id")
    admin_webhooks.add_parsers(sub)
    args = parser.parse_args(argv)
    upgrade()
    if args.cmd == "create-key":
        row, secret = create_key(args.project, args.name)
        print(f"created key {row.id} for project '{args.project}' ({row.project_id})", file=sys.stderr)
        print(secret)
        return 0
    with Session(sync_engine()) as session:
        if args.cmd in admin_webhooks.COMMANDS:
            return admin_webhooks.run(args, session, _project)
        if args.cmd == "list-keys":
            stmt = select(ApiKey, Project).where(ApiKey.project_id == Project.id)
            if args.project:
                stmt = stmt.where(Project.name == args.project)
            for key, project in session.exec(stmt).all():
                state = "revoked" if key.revoked_at else "active"
                print(f"{key.id}\t{project.name}\t{key.name}\t{key.hint}\t{state}")
            return 0
        found = session.get(ApiKey, args.key_id)
        if found is None:
            print(f"no key {args.key_id}", file=sys.stderr)
            return 1
        found.revoked_at = now()
        session.add(found)
        session.commit()
        return 0


if __name__ == "__main__":
    sys.exit(main())
