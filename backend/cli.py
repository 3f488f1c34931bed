"""The `keepstone backend` command: serve the management service, create local users."""

from __future__ import annotations

import argparse
import getpass
import os
import sys


def add_commands(sub) -> None:
    """Add `keepstone backend` to the `keepstone` parser."""
    p = sub.add_parser("backend", help="serve the management service on 127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("KEEPSTONE_BACKEND_PORT", "8090")))
    p.add_argument(
        "--host",
        default=os.environ.get("KEEPSTONE_BACKEND_HOST", "127.0.0.1"),
        help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container behind its proxy)",
    )
    p.set_defaults(func=serve)
    sub_backend = p.add_subparsers(dest="backend_command")
    u = sub_backend.add_parser("create-user", help="create a local user of the management UI")
    u.add_argument("email")
    u.add_argument("--org", action="append", default=[], help="cloudId of an organisation the user may see")
    u.add_argument(
        "--role",
        choices=("viewer", "operator", "admin"),
        default="admin",
        help="the user's role in each --org (default admin; see docs/security.md#roles)",
    )
    u.set_defaults(func=create_user)
    from backend.audit.cli import add_commands as add_audit_commands

    add_audit_commands(sub_backend)  # keepstone backend audit verify
    from backend.catalog.cli import add_commands as add_catalog_commands

    add_catalog_commands(sub_backend)  # keepstone backend catalog rebuild


def serve(args: argparse.Namespace) -> int:
    from backend.app import create_app
    from keepstone.servers import serve_forever

    app = create_app()
    print(f"Keepstone backend: http://{args.host}:{args.port}", flush=True)
    serve_forever(app, args.port, args.host)
    return 0


def create_user(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError
    from werkzeug.security import generate_password_hash

    from backend.config import Config
    from backend.db import Database, migrate
    from backend.db.models import Membership, Organisation, User

    email = args.email.strip().lower()
    if "@" not in email:
        return _fail(f"{args.email!r} is not an email address")
    config = Config()
    try:
        migrate(config.database_url)
        db = Database(config.database_url)
        with db.session() as s:
            if s.scalar(select(User).where(User.email == email)) is not None:
                return _fail(f"a user {email} already exists; nothing was changed")
            orgs = []
            for cloud_id in args.org:
                org = s.scalar(select(Organisation).where(Organisation.cloud_id == cloud_id))
                if org is None:
                    return _fail(f"there is no organisation {cloud_id}; nothing was changed")
                orgs.append(org)
            password = os.environ.get("KEEPSTONE_USER_PASSWORD") or getpass.getpass("Password: ")
            if not password:
                return _fail("give a password (KEEPSTONE_USER_PASSWORD or at the prompt)")
            user = User(email=email, display_name=args.email, password_hash=generate_password_hash(password))
            s.add(user)
            s.flush()
            for org in orgs:
                s.add(Membership(user_id=user.id, organisation_id=org.id, role=args.role))
            s.commit()
    except IntegrityError:  # created by someone else in between
        return _fail(f"a user {email} already exists; nothing was changed")
    except SQLAlchemyError as e:  # never the statement: it holds the password hash
        return _fail(
            f"the database at {_redacted(config.database_url)} refused: {type(getattr(e, 'orig', None) or e).__name__}"
        )
    print(f"created user {email}")
    return 0


def _fail(message: str) -> int:
    print(f"keepstone backend create-user: {message}", file=sys.stderr)
    return 1


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(the configured database)"
